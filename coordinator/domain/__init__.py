"""Coordinator domain logic: compatibility, baselines, audit and restore stamps.

Plain Python over the agent's decoded profiles; no protobuf, no gRPC (the
service layer converts wire <-> domain). Import the submodule that holds a
name (``domain.compat``, ``domain.audit``...): importing one (hosts, say)
must not load archspec and the engine.
"""
