"""Simulators of field equipment, for the demo, the tests and the benchmarks."""
