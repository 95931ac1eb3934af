"""`make bench`: the benchmark suite (suite.py) and the probes it runs in the apps' environments."""
