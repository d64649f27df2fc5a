"""This host's TSC rate and TSC scaling, as the kernel and the hardware report them.

QEMU refuses to restore an invariant-TSC guest on a host whose TSC runs at
another rate unless the host can scale a guest's TSC, so the rate must be the
one KVM itself uses, not a CPUID estimate: CPUID states it only on Intel
parts from Skylake on (leaf 0x15) and never on AMD.

- Rate: ``KVM_GET_TSC_KHZ`` on a vCPU of a throwaway VM (``/dev/kvm``). A new
  vCPU runs at the VM's default rate, which Linux sets to the host's
  ``tsc_khz`` (``kvm_arch_init_vm``: ``default_tsc_khz = max_tsc_khz ? :
  tsc_khz``; ``max_tsc_khz`` is ``tsc_khz`` on constant-TSC hosts). The ioctl is a
  vCPU ioctl since Linux 2.6.39 and also a VM ioctl only with
  ``KVM_CAP_VM_TSC_CONTROL`` (5.x and later): the vCPU form works everywhere.
  Without ``/dev/kvm``: ``/sys/devices/system/cpu/cpu0/tsc_freq_khz``, which some
  distribution kernels export (mainline exports ``tsc_khz`` nowhere; the boot
  log's "Refined TSC clocksource calibration" line is not reliably readable).
  Otherwise the rate is unknown, with the reason.
- Scaling: Intel reports it in ``IA32_VMX_PROCBASED_CTLS2`` bit 25, which Linux
  prints as ``tsc_scaling`` on the ``vmx flags`` line of ``/proc/cpuinfo``; AMD
  in CPUID 0x8000000A EDX bit 4 (TscRateMsr), which the decoder reads from the
  raw leaves itself.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from .raw import HostTsc

KVM_DEVICE = "/dev/kvm"
SYSFS_TSC_KHZ = "/sys/devices/system/cpu/cpu0/tsc_freq_khz"
CPUINFO = "/proc/cpuinfo"

# <linux/kvm.h>: _IO(KVMIO, nr) with KVMIO = 0xAE.
KVMIO = 0xAE
KVM_CREATE_VM = KVMIO << 8 | 0x01
KVM_CREATE_VCPU = KVMIO << 8 | 0x41
KVM_GET_TSC_KHZ = KVMIO << 8 | 0xA3

SOURCE_KVM = "kvm"
SOURCE_SYSFS = "sysfs"
SCALING_VMX_FLAGS = "vmx-flags"

_VMX_FLAGS = re.compile(r"^vmx flags\s*:(.*)$", re.MULTILINE)


def kvm_tsc_khz(device: str = KVM_DEVICE) -> tuple[int | None, str]:
    """The host TSC rate KVM gives a new vCPU (kHz), or None with the reason."""
    try:
        kvm = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, f"{device} does not exist (KVM is not loaded here)"
    except OSError as exc:
        return None, f"{device}: {exc.strerror}"
    fds = [kvm]
    try:
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        fds.append(vm)
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
        fds.append(vcpu)
        khz = fcntl.ioctl(vcpu, KVM_GET_TSC_KHZ, 0)
    except OSError as exc:
        return None, f"KVM_GET_TSC_KHZ on a throwaway VM failed: {exc.strerror}"
    finally:
        for fd in reversed(fds):
            os.close(fd)
    if khz <= 0:
        return None, "KVM reports no TSC rate (the host kernel has no stable TSC)"
    return khz, ""


def sysfs_tsc_khz(path: str = SYSFS_TSC_KHZ) -> int | None:
    """The kernel's calibrated rate where the kernel exports it (not mainline)."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def vmx_tsc_scaling(cpuinfo: str = CPUINFO) -> bool | None:
    """Intel TSC scaling from the kernel's ``vmx flags``; None when the kernel prints none."""
    try:
        text = Path(cpuinfo).read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    lines = _VMX_FLAGS.findall(text)
    if not lines:
        return None
    # Every logical CPU must be able to scale: a vCPU may run on any of them.
    return all("tsc_scaling" in line.split() for line in lines)


def read_host_tsc() -> HostTsc:
    """The rate and scaling this host's kernel reports; never raises."""
    khz, why = kvm_tsc_khz()
    source = SOURCE_KVM
    if khz is None:
        khz = sysfs_tsc_khz()
        source = SOURCE_SYSFS
        if khz is None:
            why = f"{why}; the kernel exports no tsc_freq_khz"
    scaling = vmx_tsc_scaling()
    return HostTsc(
        khz=khz,
        source=source if khz is not None else "",
        scaling=scaling,
        scaling_source=SCALING_VMX_FLAGS if scaling is not None else "",
        missing="" if khz is not None else why,
    )
