"""cpucompat."""
