"""The agency's back office: the registry edited through the API with its audit log,
review of quarantined input, and transmission and effective-data rate reports."""
