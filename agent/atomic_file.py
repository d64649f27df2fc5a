"""Replace a file's content all at once: readers see the old file or the new, never half.

The agent's policy state file and `cpucompat stamp`'s stamps are read by other
programs (an operator's tooling, `cpucompat guard` before a restore) and must
survive a crash or power loss mid-write. The content goes to a temporary file
in the same folder, which is flushed to disk and renamed over the target; then
the folder itself is flushed so the rename is durable too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: str | bytes, mode: int = 0o666) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically and durably.

    ``mode`` is masked by the umask like any new file's (0o666: what ``open``
    gives; 0o600 keeps a file private). On any failure the temporary file is
    removed, ``path`` keeps its old content, and the OSError propagates.
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (some filesystems cannot: then it is best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. EINVAL on filesystems without directory fsync; the data itself is synced
    finally:
        os.close(fd)
