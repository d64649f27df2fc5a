"""Read this host's processors: every logical CPU the process may run on.

CPUID answers for the CPU the calling thread runs on, so the thread is
pinned to each CPU in turn (Linux applies sched_setaffinity(0, ...) to the
calling thread only, which keeps this safe inside a threaded daemon).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from . import cpuid_exec, kvm_offer
from .enumerate import read_all_leaves
from .errors import EXIT_USAGE, CpucompatError
from .host_tsc import read_host_tsc
from .raw import SOURCE_DEVCPU, SOURCE_INSTRUCTION, LogicalCpu, RawCapture, Regs

DEVCPU_PATTERN = "/dev/cpu/{cpu}/cpuid"
_MICROCODE = re.compile(r"^microcode\s*:\s*(\S+)", re.MULTILINE)


class ProbeError(CpucompatError, RuntimeError):
    """The live probe cannot read this host; the message names the fix."""

    grpc_status = "FAILED_PRECONDITION"
    exit_code = EXIT_USAGE


def allowed_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def read_microcode(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The microcode revision the OS reports (CPUID does not carry it)."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    revisions = sorted(set(_MICROCODE.findall(text)))
    if not revisions:
        return None
    return revisions[0] if len(revisions) == 1 else ",".join(revisions)


def probe_instruction(cpus: list[int] | None = None) -> RawCapture:
    """Execute CPUID (and XGETBV) on every allowed logical CPU."""
    try:
        page = cpuid_exec.executor()
    except cpuid_exec.CpuidUnavailableError as exc:
        raise ProbeError(str(exc)) from None
    original = os.sched_getaffinity(0)
    targets = cpus if cpus is not None else sorted(original)
    result: list[LogicalCpu] = []
    try:
        for cpu in targets:
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError as exc:
                raise ProbeError(f"cannot run on logical CPU {cpu}: {exc.strerror}") from None
            leaves = read_all_leaves(page.cpuid)
            osxsave = leaves.get((1, 0), (0, 0, 0, 0))[2] >> 27 & 1
            xcr0 = page.xgetbv(0) if osxsave else None
            result.append(LogicalCpu(index=cpu, leaves=leaves, xcr0=xcr0))
    finally:
        os.sched_setaffinity(0, original)
    return RawCapture(
        cpus=tuple(result),
        source=SOURCE_INSTRUCTION,
        microcode=read_microcode(),
        host_tsc=read_host_tsc(),
    )


def probe_devcpu(cpus: list[int] | None = None) -> RawCapture:
    """Read CPUID through the kernel's /dev/cpu/N/cpuid devices (module `cpuid`)."""
    targets = cpus if cpus is not None else allowed_cpus()
    result: list[LogicalCpu] = []
    for cpu in targets:
        path = DEVCPU_PATTERN.format(cpu=cpu)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise ProbeError(
                f"{path} does not exist; load the kernel module with 'modprobe cpuid' "
                "or use the default source (the CPUID instruction)"
            ) from None
        except PermissionError:
            raise ProbeError(
                f"{path}: permission denied; run as root or use the default source"
            ) from None
        try:

            def read(leaf: int, subleaf: int, fd: int = fd, path: str = path) -> Regs:
                data = os.pread(fd, 16, subleaf << 32 | leaf)
                if len(data) != 16:
                    raise ProbeError(f"{path}: short read for leaf 0x{leaf:x}.{subleaf}")
                return (
                    int.from_bytes(data[0:4], "little"),
                    int.from_bytes(data[4:8], "little"),
                    int.from_bytes(data[8:12], "little"),
                    int.from_bytes(data[12:16], "little"),
                )

            leaves = read_all_leaves(read)
        except OSError as exc:
            raise ProbeError(f"{path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        result.append(LogicalCpu(index=cpu, leaves=leaves, xcr0=None))
    return RawCapture(
        cpus=tuple(result),
        source=SOURCE_DEVCPU,
        microcode=read_microcode(),
        host_tsc=read_host_tsc(),
    )


def with_offer(capture: RawCapture, device: str = kvm_offer.KVM_DEVICE) -> RawCapture:
    """The capture with the hypervisor's offer read beside it (or the reason there is none)."""
    offer, missing = kvm_offer.offer_or_reason(device)
    return dataclasses.replace(capture, offer=offer, offer_missing=missing)


def probe(source: str = SOURCE_INSTRUCTION) -> RawCapture:
    """This host's CPUID leaves and, where /dev/kvm answers, what KVM offers a guest."""
    if source in (SOURCE_INSTRUCTION, "instruction"):
        return with_offer(probe_instruction())
    if source == SOURCE_DEVCPU:
        return with_offer(probe_devcpu())
    raise ProbeError(f"unknown probe source {source!r}; use 'instruction' or 'devcpu'")
