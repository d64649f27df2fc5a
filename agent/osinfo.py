"""What the OS says about the processors, via py-cpuinfo: informational, never decisive.

CPUID decides compatibility; the OS view (clock rates, cache sizes, the
kernel's architecture name) helps an operator read a host listing. py-cpuinfo
takes about a second (it spawns a helper), so the agent gathers it once in
the background and attaches it to later reports.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

OS_KEYS = ("arch", "bits", "count", "hz_advertised_friendly", "l2_cache_size", "l3_cache_size")

_details: dict[str, str] = {}
_started = threading.Lock()
_ready = threading.Event()


def _gather() -> None:
    try:
        import cpuinfo

        info = cpuinfo.get_cpu_info()
        _details.update({f"os.{k}": str(info[k]) for k in OS_KEYS if info.get(k) not in (None, "")})
    except Exception:  # the OS view is optional; CPUID is what counts
        pass
    finally:
        _ready.set()


def start_gathering() -> None:
    """Start the one background gathering (idempotent)."""
    if _started.acquire(blocking=False):
        threading.Thread(target=_gather, name="os-info", daemon=True).start()


def os_details(wait: float = 0.0) -> Mapping[str, str]:
    """The OS view gathered so far (empty until the background call finished)."""
    _ready.wait(wait)
    return dict(_details)
