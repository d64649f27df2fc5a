"""The storage errors every backend raises, so services and servicers never see a driver's own."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database cannot be opened, is not cpucompat's, or is from a newer cpucompat."""


class StorageFault(StoreError):
    """Reading or writing the database failed at run time (disk full, damaged, I/O error).

    The servicers answer RESOURCE_EXHAUSTED when ``full`` (nothing more fits on the disk),
    UNAVAILABLE otherwise, and log one line; nothing half-written stays behind.
    """

    def __init__(self, message: str, full: bool = False) -> None:
        super().__init__(message)
        self.full = full
