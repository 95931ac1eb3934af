"""Benchmark probes: small scripts `tooling/bench/suite.py` runs inside an app's own environment.

Each prints one JSON object on its last line. They import only what that app's environment
has (never another app), so they measure exactly what the app runs.
"""
