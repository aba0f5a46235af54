"""Demo data for ``make run``: a small, realistic registry (see ``registry.json``).

The air stations are real national-network stations (codes and names as the national
real-time publishing platform lists them; coordinates rounded). The enterprises are
fictional, marked （演示）, with valid-format credit codes made for the demo.
"""
