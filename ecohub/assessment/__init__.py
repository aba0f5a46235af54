"""The annual air-quality assessment (HJ 663-2013) of stations and cities: rules, the
store's computation, its API, report-card pages and command."""
