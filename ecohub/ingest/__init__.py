"""Ingestion: the doors data comes in by (HJ 212 gateway, file imports) and the batch
writer that takes it into the store."""
