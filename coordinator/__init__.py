"""Coordinator: keeps host profiles and decides compatibility and fail-over policy."""
