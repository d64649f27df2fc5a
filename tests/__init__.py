"""cpucompat tests."""
