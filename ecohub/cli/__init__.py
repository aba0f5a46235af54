"""The ``ecohub`` command line."""
