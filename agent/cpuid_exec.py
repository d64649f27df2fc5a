"""Execute the CPUID and XGETBV instructions from Python.

The instructions are unprivileged, so a few bytes of machine code in an
executable page, called through ctypes, read the processor directly: no
kernel module, no helper binary. Because a fault in machine code kills the
whole interpreter, :func:`executor` first runs the code once in a forked
child and only hands it out when the child came back clean.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import signal
from functools import cache

from .errors import EXIT_USAGE, CpucompatError
from .raw import Regs

X86_64_MACHINES = frozenset({"x86_64", "amd64", "AMD64", "x64"})

# void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4])   (System V x86-64 ABI)
_CPUID_CODE = bytes(
    [
        0x53,  # push rbx            (callee-saved, CPUID clobbers it)
        0x89,
        0xF8,  # mov eax, edi
        0x89,
        0xF1,  # mov ecx, esi
        0x49,
        0x89,
        0xD0,  # mov r8, rdx
        0x0F,
        0xA2,  # cpuid
        0x41,
        0x89,
        0x00,  # mov [r8], eax
        0x41,
        0x89,
        0x58,
        0x04,  # mov [r8+4], ebx
        0x41,
        0x89,
        0x48,
        0x08,  # mov [r8+8], ecx
        0x41,
        0x89,
        0x50,
        0x0C,  # mov [r8+12], edx
        0x5B,  # pop rbx
        0xC3,  # ret
    ]
)

# uint64_t xgetbv(uint32_t index)
_XGETBV_CODE = bytes(
    [
        0x89,
        0xF9,  # mov ecx, edi
        0x0F,
        0x01,
        0xD0,  # xgetbv
        0x48,
        0xC1,
        0xE2,
        0x20,  # shl rdx, 32
        0x48,
        0x09,
        0xD0,  # or rax, rdx
        0xC3,  # ret
    ]
)

_PROT_READ, _PROT_WRITE, _PROT_EXEC = 1, 2, 4
_MAP_PRIVATE, _MAP_ANONYMOUS = 0x02, 0x20
_PAGE = 4096


class CpuidUnavailableError(CpucompatError, RuntimeError):
    """This process cannot execute CPUID; the message says why and what to do."""

    grpc_status = "FAILED_PRECONDITION"
    exit_code = EXIT_USAGE


def _check_machine() -> None:
    machine = platform.machine()
    if machine not in X86_64_MACHINES:
        raise CpuidUnavailableError(
            f"CPUID is an x86-64 instruction and this machine is {machine or 'unknown'}; "
            "run the probe on an x86-64 host, or use --from-dump FILE"
        )
    if os.name != "posix":
        raise CpuidUnavailableError("the live probe needs Linux; use --from-dump FILE elsewhere")


class _CodePage:
    """One page holding both routines, mapped writable, then flipped to read+execute."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        addr = libc.mmap(
            None, _PAGE, _PROT_READ | _PROT_WRITE, _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0
        )
        if addr in (None, ctypes.c_void_p(-1).value):
            raise CpuidUnavailableError(
                f"cannot map memory for the CPUID routine: {os.strerror(ctypes.get_errno())}"
            )
        ctypes.memmove(addr, _CPUID_CODE, len(_CPUID_CODE))
        ctypes.memmove(addr + 64, _XGETBV_CODE, len(_XGETBV_CODE))
        if libc.mprotect(addr, _PAGE, _PROT_READ | _PROT_EXEC) != 0:
            raise CpuidUnavailableError(
                "the OS refuses executable memory (mprotect PROT_EXEC: "
                f"{os.strerror(ctypes.get_errno())}); allow execmem for this process "
                "(SELinux/PaX policy) or use --source devcpu with the cpuid kernel module loaded"
            )
        self._addr = addr
        cpuid_proto = ctypes.CFUNCTYPE(
            None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)
        )
        self._cpuid = cpuid_proto(addr)
        self._xgetbv = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint32)(addr + 64)
        self._out = (ctypes.c_uint32 * 4)()

    def cpuid(self, leaf: int, subleaf: int = 0) -> Regs:
        out = self._out
        self._cpuid(leaf, subleaf, out)
        return (out[0], out[1], out[2], out[3])

    def xgetbv(self, index: int = 0) -> int:
        return int(self._xgetbv(index))


def _osxsave(page: _CodePage) -> bool:
    return bool(page.cpuid(1, 0)[2] & (1 << 27))


def _trial_run(page: _CodePage) -> None:
    """Run both routines in a forked child; raise if the child dies on them."""
    pid = os.fork()
    if pid == 0:  # child: any fault here kills only the child
        try:
            page.cpuid(0, 0)
            if _osxsave(page):
                page.xgetbv(0)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        raise CpuidUnavailableError(
            f"executing CPUID killed a test process with {sig}; this processor or OS does not "
            "allow user-mode CPUID (CPUID faulting?); use --source devcpu or --from-dump FILE"
        )
    if os.WEXITSTATUS(status) != 0:
        raise CpuidUnavailableError("the CPUID trial process failed; use --from-dump FILE")


@cache
def executor() -> _CodePage:
    """The checked CPUID/XGETBV routines of this process (built and trial-run once)."""
    _check_machine()
    page = _CodePage()
    _trial_run(page)
    return page
