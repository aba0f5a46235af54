"""Public participation (12369): complaints intake, linking into events, dispatch with
deadlines, replies, self-query, statistics and the evidence beside each complaint."""
