"""Benchmark tooling, outside the installed packages: ``bench.generate`` writes realistic
SPEC §3 source folders at any scale."""
