"""The registry: one list of regions, sites, enterprises, permits, outlets, monitoring
points and parameters, with every change written to the audit log."""
