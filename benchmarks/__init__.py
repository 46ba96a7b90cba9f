"""Benchmarks and a bounded load test for Live-Track at 1k, 10k and 100k sessions."""
