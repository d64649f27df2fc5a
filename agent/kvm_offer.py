"""The hypervisor's offer, read live from KVM's system descriptor (/dev/kvm).

Raw CPUID tells what the processor has; a guest sees what KVM offers it, which
is that minus what KVM cannot virtualise (or the host kernel disabled) plus
what KVM emulates. KVM publishes that offer on /dev/kvm itself, without a VM:

* ``KVM_GET_SUPPORTED_CPUID`` (Linux ``arch/x86/kvm/cpuid.c``,
  ``kvm_dev_ioctl_get_cpuid``): every leaf KVM can give a guest, as
  ``struct kvm_cpuid2`` entries; ``E2BIG`` means the buffer was too small.
* ``KVM_GET_MSR_FEATURE_INDEX_LIST`` then ``KVM_GET_MSRS`` on the system fd
  (``arch/x86/kvm/x86.c``, ``msr_based_features`` / ``kvm_get_msr_feature``):
  the feature MSRs, ``IA32_ARCH_CAPABILITIES`` (0x10a) among them, with the
  values KVM offers.
* ``KVM_GET_API_VERSION`` (always 12 since Linux 2.6.22).

Only ctypes and fcntl.ioctl: the ioctl numbers are computed from the kernel's
``_IO``/``_IOWR`` macros (``include/uapi/asm-generic/ioctl.h``) with the
arguments ``include/uapi/linux/kvm.h`` gives each ioctl.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os

from .raw import KIND_KVM, LeafKey, RawOffer, Regs

KVM_DEVICE = "/dev/kvm"

# include/uapi/asm-generic/ioctl.h: nr bits 0-7, type 8-15, size 16-29, direction 30-31.
_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction: int, kind: int, nr: int, size: int) -> int:
    return direction << 30 | size << 16 | kind << 8 | nr


def _io(kind: int, nr: int) -> int:
    return _ioc(_IOC_NONE, kind, nr, 0)


def _iowr(kind: int, nr: int, size: int) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, kind, nr, size)


class KvmCpuidEntry2(ctypes.Structure):
    """struct kvm_cpuid_entry2 (arch/x86/include/uapi/asm/kvm.h)."""

    _fields_ = [
        ("function", ctypes.c_uint32),
        ("index", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("eax", ctypes.c_uint32),
        ("ebx", ctypes.c_uint32),
        ("ecx", ctypes.c_uint32),
        ("edx", ctypes.c_uint32),
        ("padding", ctypes.c_uint32 * 3),
    ]


class KvmCpuid2Header(ctypes.Structure):
    """struct kvm_cpuid2 without its flexible ``entries[]`` array."""

    _fields_ = [("nent", ctypes.c_uint32), ("padding", ctypes.c_uint32)]


class KvmMsrListHeader(ctypes.Structure):
    """struct kvm_msr_list without its flexible ``indices[]`` array."""

    _fields_ = [("nmsrs", ctypes.c_uint32)]


class KvmMsrEntry(ctypes.Structure):
    """struct kvm_msr_entry."""

    _fields_ = [
        ("index", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("data", ctypes.c_uint64),
    ]


class KvmMsrsHeader(ctypes.Structure):
    """struct kvm_msrs without its flexible ``entries[]`` array."""

    _fields_ = [("nmsrs", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


KVMIO = 0xAE
KVM_GET_API_VERSION = _io(KVMIO, 0x00)
KVM_CHECK_EXTENSION = _io(KVMIO, 0x03)
KVM_GET_SUPPORTED_CPUID = _iowr(KVMIO, 0x05, ctypes.sizeof(KvmCpuid2Header))
KVM_GET_MSR_FEATURE_INDEX_LIST = _iowr(KVMIO, 0x0A, ctypes.sizeof(KvmMsrListHeader))
KVM_GET_MSRS = _iowr(KVMIO, 0x88, ctypes.sizeof(KvmMsrsHeader))
KVM_CAP_GET_MSR_FEATURES = 153
KVM_API_VERSION = 12
"""The only API version Linux has shipped since 2.6.22; anything else is not this KVM."""

KVM_MAX_CPUID_ENTRIES = 256
"""arch/x86/include/asm/kvm_host.h; the buffer grows to this and no further."""
_FIRST_NENT = 64
_MAX_FEATURE_MSRS = 1024


class OfferUnavailable(Exception):
    """There is no offer to read here; the message says why (it goes into the profile)."""


def _get_supported_cpuid(fd: int) -> dict[LeafKey, Regs]:
    nent = _FIRST_NENT
    while True:

        class Cpuid2(ctypes.Structure):
            _fields_ = [
                ("nent", ctypes.c_uint32),
                ("padding", ctypes.c_uint32),
                ("entries", KvmCpuidEntry2 * nent),
            ]

        buf = Cpuid2(nent=nent)
        try:
            fcntl.ioctl(fd, KVM_GET_SUPPORTED_CPUID, buf, True)
        except OSError as exc:
            if exc.errno == errno.E2BIG and nent < KVM_MAX_CPUID_ENTRIES:
                nent = min(nent * 2, KVM_MAX_CPUID_ENTRIES)
                continue
            raise OfferUnavailable(f"KVM_GET_SUPPORTED_CPUID failed: {exc.strerror}") from None
        leaves: dict[LeafKey, Regs] = {}
        for entry in buf.entries[: buf.nent]:
            leaves[(entry.function, entry.index)] = (entry.eax, entry.ebx, entry.ecx, entry.edx)
        return leaves


def _feature_msr_indices(fd: int) -> list[int]:
    count = 0
    while True:

        class MsrList(ctypes.Structure):
            _fields_ = [("nmsrs", ctypes.c_uint32), ("indices", ctypes.c_uint32 * max(count, 1))]

        buf = MsrList(nmsrs=count)
        try:
            fcntl.ioctl(fd, KVM_GET_MSR_FEATURE_INDEX_LIST, buf, True)
        except OSError as exc:
            # E2BIG: the kernel wrote the count it needs into nmsrs (x86.c, kvm_arch_dev_ioctl).
            if exc.errno == errno.E2BIG and count < buf.nmsrs <= _MAX_FEATURE_MSRS:
                count = buf.nmsrs
                continue
            raise OfferUnavailable(
                f"KVM_GET_MSR_FEATURE_INDEX_LIST failed: {exc.strerror}"
            ) from None
        return list(buf.indices[: buf.nmsrs])


def _feature_msrs(fd: int) -> dict[int, int]:
    """The feature MSRs KVM offers, by index; empty when this KVM has none to report."""
    if fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) <= 0:
        return {}
    indices = _feature_msr_indices(fd)
    if not indices:
        return {}

    class Msrs(ctypes.Structure):
        _fields_ = [
            ("nmsrs", ctypes.c_uint32),
            ("pad", ctypes.c_uint32),
            ("entries", KvmMsrEntry * len(indices)),
        ]

    values: dict[int, int] = {}
    # KVM_GET_MSRS stops at the first MSR it cannot read and returns how many it read
    # (x86.c, __msr_io); read one by one so one refusal cannot hide the others.
    for index in indices:
        buf = Msrs(nmsrs=1)
        buf.entries[0].index = index
        try:
            done = fcntl.ioctl(fd, KVM_GET_MSRS, buf, True)
        except OSError as exc:
            raise OfferUnavailable(f"KVM_GET_MSRS failed: {exc.strerror}") from None
        if done == 1:
            values[index] = int(buf.entries[0].data)
    return values


def read_offer(device: str = KVM_DEVICE) -> RawOffer:
    """What KVM on this host offers a guest; OfferUnavailable says why there is nothing."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OfferUnavailable(f"{device} does not exist (KVM is not loaded here)") from None
    except PermissionError:
        raise OfferUnavailable(
            f"{device}: permission denied; run the agent as root or in the kvm group"
        ) from None
    except OSError as exc:
        raise OfferUnavailable(f"{device}: {exc.strerror}") from None
    try:
        try:
            api = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        except OSError as exc:
            raise OfferUnavailable(f"{device} is not KVM ({exc.strerror})") from None
        if api != KVM_API_VERSION:
            raise OfferUnavailable(f"{device} answers KVM API version {api}, not {KVM_API_VERSION}")
        leaves = _get_supported_cpuid(fd)
        if (0, 0) not in leaves:
            raise OfferUnavailable(f"{device}: KVM_GET_SUPPORTED_CPUID returned no leaf 0")
        msrs = _feature_msrs(fd)
    finally:
        os.close(fd)
    return RawOffer(kind=KIND_KVM, api_version=api, leaves=leaves, msrs=msrs)


def offer_or_reason(device: str = KVM_DEVICE) -> tuple[RawOffer | None, str | None]:
    """The offer, or None with the reason there is none (for the profile)."""
    try:
        return read_offer(device), None
    except OfferUnavailable as exc:
        return None, str(exc)
