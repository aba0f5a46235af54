"""One permit (一证式): emissions accounting from the monitoring data and the
environmental protection tax of a month (issue 29, in progress: docs/permits-and-tax.md)."""
