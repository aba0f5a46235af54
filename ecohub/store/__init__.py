"""The store: database engine, schema migrations, observations and quarantine.

It runs on an embedded SQLite file by default and on PostgreSQL in production; the
same code and the same migrations serve both.
"""
