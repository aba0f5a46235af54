"""EcoHub: an open eco-environment data platform.

One package, one module per bounded area:

- ``registry`` — regions, sites, enterprises, permits, outlets, monitoring points,
  parameters, and the audit log of every change to them;
- ``store`` — the database engine, migrations, the time-series of observations and
  the quarantine of rejected input;
- ``cli`` — the ``ecohub`` command.

Domain rules are plain functions over plain data; I/O stays at the edges.
"""

__version__ = "0.1.0"
