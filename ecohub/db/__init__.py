"""The ground floor's database: engine, metadata base, column types, migrations, the
change counters and the quarantine of rejected input.

Nothing here imports anything above the ground floor (config, clock, db); every area
builds its tables on :data:`ecohub.db.base.Base`.
"""
