"""Agent: reads the real processor (CPUID, XGETBV), decodes it, reports it."""
