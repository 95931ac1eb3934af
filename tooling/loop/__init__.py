"""The fraud loop as a sequence of `kedro run`s: its steps, `make demo`, `make simulate-months`."""
