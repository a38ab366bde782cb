"""Benchmarks (`make bench`) and the soak script: measurements, never tests."""
