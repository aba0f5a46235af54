"""The time series: observations (idempotent bulk writes, audited corrections, keyset
reads), their hourly and daily rollups with the validity rules of the standards, station
AQI, the rollup queue, transmission and effective-data rates, and export.

Every door of :mod:`ecohub.ingest` writes here through its pipeline; the open-data,
alarm and agency areas read from here.
"""
