"""EcoHub: an open eco-environment data platform.

The layout (floors, areas and where things go) is described in ``docs/architecture.md``;
the version is the installed distribution's (``importlib.metadata.version("ecohub")``,
``ecohub --version``).
"""
