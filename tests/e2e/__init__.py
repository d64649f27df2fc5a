"""cpucompat tests: the e2e layer (see tests/conftest.py)."""
