"""Alarms and warnings: rules judged as data arrives, a lifecycle per condition, and
notifications by webhook and e-mail.

- :mod:`ecohub.alarms.rules` — the rules as plain functions (exceedance, anomalies,
  offline, heavy-pollution warning levels);
- :mod:`ecohub.alarms.lifecycle` — opening, extending, closing, acknowledging alarms;
- :mod:`ecohub.alarms.evaluate` — the rules applied to what the pipeline recomputed, and
  the periodic offline sweep;
- :mod:`ecohub.alarms.notify` — subscriptions, the outbox and its delivery;
- :mod:`ecohub.alarms.housekeeping` — the periodic task run by ``ecohub serve``.
"""
