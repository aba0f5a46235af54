"""The HTTP API (FastAPI): machine upload of measurements, and later the open-data API."""
