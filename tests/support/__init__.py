"""Helpers the tests share: paths and dumps, daemons, an in-process coordinator, a test CA.

Test modules import from here (``from tests.support.paths import DEV_DUMP``), never from
another test module, so any test module can move between layers on its own.
"""
