"""The storage errors every backend raises, so services and servicers never see a driver's own."""

from __future__ import annotations

from cpucompat.agent.errors import EXIT_FAILURE, EXIT_USAGE, CpucompatError


class StoreError(CpucompatError, RuntimeError):
    """The database cannot be opened, is not cpucompat's, or is from a newer cpucompat."""

    grpc_status = "UNAVAILABLE"
    exit_code = EXIT_USAGE  # named on the coordinator's command line: --db


class StorageFault(StoreError):
    """Reading or writing the database failed at run time (disk full, damaged, I/O error).

    The servicers answer RESOURCE_EXHAUSTED when ``full`` (nothing more fits on the disk),
    UNAVAILABLE otherwise, and log one line; nothing half-written stays behind.
    ``outage``: the database itself was unavailable (unreachable, locked, full, an I/O
    error), so nothing could be recorded; not one change's conflict or a damaged row.
    The registry does not count hosts' silence during an outage (``outage.py``).
    """

    def __init__(self, message: str, full: bool = False, outage: bool = True) -> None:
        super().__init__(message)
        self.full = full
        self.outage = outage or full
        self.grpc_status = "RESOURCE_EXHAUSTED" if full else "UNAVAILABLE"
        self.exit_code = EXIT_FAILURE
