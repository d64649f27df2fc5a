"""cpucompat tests: the integration layer (see tests/conftest.py)."""
