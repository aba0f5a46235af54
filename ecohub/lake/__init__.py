"""The Parquet lake: closed months exported with a manifest, SQL on DuckDB, the national
analyses on DuckDB and Spark (docs/lake.md)."""
