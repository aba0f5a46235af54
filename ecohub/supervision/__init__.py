"""Supervision (监管执法): risk-targeted and double-random inspections, inspections in
the field, administrative penalty cases, enterprise environmental credit and their
disclosure. See ``docs/supervision.md``."""
