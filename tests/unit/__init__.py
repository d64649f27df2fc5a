"""cpucompat tests: the unit layer (see tests/conftest.py)."""
