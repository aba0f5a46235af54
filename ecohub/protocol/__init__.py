"""Wire protocols spoken by monitoring equipment (pure codecs, no I/O)."""
