"""A libvirt domain's own CPU definition (``<cpu>``), read from its XML.

``virsh dumpxml`` says how a VM's virtual CPU was built, which is what its
guest saw at boot; `sides.requirement_of_domain` turns it into a requirement.
The rules (libvirt formatdomain "CPU model and topology"; QEMU
target/i386/cpu.c), with their sources in docs/design-notes.md:

- ``host-passthrough`` (and ``maximum``, QEMU ``-cpu max``): the boot host's
  offer, as for a host-mode VM. invtsc only with ``migratable='off'``: QEMU's
  ``host`` model is migratable by default and then drops the bits it marks
  unmigratable (``x86_cpu_get_migratable_flags``).
- ``host-model``: the same, minus what QEMU marks unmigratable
  (``FEAT_8000_0007_EDX .unmigratable_flags = CPUID_APM_INVTSC``).
- ``custom`` (the default mode): QEMU model ``NAME`` from the generated table
  (`qemu_models`), the default ``qemu64`` without ``<model>`` or without
  ``<cpu>`` at all (QEMU ``TARGET_DEFAULT_CPU_TYPE``); ``match='minimum'``
  lets the guest see more than the model, so it is read as host-model.
- ``<clock><timer name='tsc' frequency='HZ'/>``: the guest's TSC runs at that
  rate wherever it is restored (QEMU ``tsc-frequency``), so it is part of the
  requirement (``tsc_fixed``).
- ``<feature policy=...>``: ``require`` (the default) and ``force`` add,
  ``disable`` and ``forbid`` remove; ``optional`` adds when the boot host
  offers it, or (no boot host known) adds: the stricter side.

The file is parsed with the standard library after refusing any document type
declaration (no DTD, no entities: `defusedxml` is not a dependency).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from cpucompat.agent.errors import InputError
from cpucompat.agent.feature_table import (
    AmbiguousFeatureError,
    UnknownFeatureError,
    canonical_name,
)

from .baselines import BaselineError, normalize_vendor
from .qemu_models import QemuModelError
from .qemu_models import table as qemu_table

MAX_XML_BYTES = 256 * 1024
"""A domain's XML is a few KiB; anything far larger is not one."""

HOST_PASSTHROUGH = "host-passthrough"
HOST_MODEL = "host-model"
CUSTOM = "custom"
MAXIMUM = "maximum"
MODES = (HOST_PASSTHROUGH, HOST_MODEL, CUSTOM, MAXIMUM)

QEMU_PREFIX_MODEL = "model:qemu/"
"""How a QEMU model is named as a baseline (`baselines`)."""

QEMU_DEFAULT_MODEL = "qemu64"
"""What QEMU runs without ``-cpu`` (target/i386/cpu.h ``TARGET_DEFAULT_CPU_TYPE`` on x86-64);
libvirt passes no ``-cpu`` for a domain without a ``<cpu>`` model."""

UNMIGRATABLE = frozenset({"invariant_tsc"})
"""Bits QEMU marks unmigratable (target/i386/cpu.c, ``unmigratable_flags``: only
``CPUID_APM_INVTSC`` in FEAT_8000_0007_EDX); host-model never gives them."""

ADD_POLICIES = frozenset({"require", "force"})
REMOVE_POLICIES = frozenset({"disable", "forbid"})
OPTIONAL = "optional"
POLICIES = ADD_POLICIES | REMOVE_POLICIES | {OPTIONAL}

QEMU_MSR_FEATURES = frozenset(
    {
        # IA32_ARCH_CAPABILITIES (FEAT_ARCH_CAPABILITIES feat_names)
        "rdctl-no", "ibrs-all", "rsba", "skip-l1dfl-vmentry", "ssb-no", "mds-no",
        "pschange-mc-no", "tsx-ctrl", "taa-no", "sbdr-ssdp-no", "fbsdp-no", "psdp-no",
        "fb-clear", "pbrsb-no", "gds-no", "rfds-no", "rfds-clear",
        # IA32_CORE_CAPABILITIES, IA32_PERF_CAPABILITIES
        "split-lock-detect", "full-width-write",
    }
)  # fmt: skip
"""QEMU feature names that live in MSRs, not CPUID (target/i386/cpu.c feature words
FEAT_ARCH_CAPABILITIES, FEAT_CORE_CAPABILITY, FEAT_PERF_CAPABILITIES; and every ``vmx-*``,
FEAT_VMX_*). Accepted and kept, never decided on, as for QEMU models (`qemu_models`)."""


class LibvirtCpuError(InputError):
    """A domain XML whose ``<cpu>`` cannot be read; the message names the problem and the fix."""


@dataclass(frozen=True)
class DomainCpu:
    """What a domain's ``<cpu>`` says, in the project's feature names."""

    source: str  # the file (or label) it came from
    mode: str  # host-passthrough, host-model, custom (maximum reads as host-passthrough)
    model: str | None  # the QEMU model of a custom CPU (versioned name as given)
    vendor: str | None  # a custom CPU's <vendor>, as a CPUID vendor string
    added: frozenset[str]  # require/force, project names (invariant_tsc included)
    removed: frozenset[str]  # disable/forbid
    optional: frozenset[str]  # optional: present when the boot host offers it
    kept_aside: tuple[str, ...]  # MSR / hypervisor-leaf names: accepted, never decided
    migratable: bool  # host-passthrough's migratable attribute (default on)
    match: str | None
    check: str | None
    phys_bits: int | None  # <maxphysaddr mode='emulate' bits='N'/>
    host_phys_bits: bool  # <maxphysaddr mode='passthrough'/>
    sgx_epc: bool  # a <memory model='sgx-epc'> device
    tsc_hz: int | None = None  # <clock><timer name='tsc' frequency='HZ'/>: QEMU tsc-frequency

    @property
    def needs_boot_host(self) -> bool:
        """Host modes are the boot host's offer; so is a custom CPU taking the host's width."""
        return self.mode != CUSTOM or self.host_phys_bits

    @property
    def invtsc(self) -> bool:
        """Whether the guest was given an invariant TSC (before the boot host is consulted)."""
        if "invariant_tsc" in self.removed:
            return False
        if "invariant_tsc" in self.added:
            return True
        return self.mode == HOST_PASSTHROUGH and not self.migratable

    def summary(self) -> str:
        """One line naming the definition, stored with a registered VM."""
        what = f"custom {self.model}" if self.mode == CUSTOM else self.mode
        if self.mode == HOST_PASSTHROUGH and not self.migratable:
            what += " migratable=off"
        edits = [f"+{n}" for n in sorted(self.added)] + [f"-{n}" for n in sorted(self.removed)]
        edits += [f"?{n}" for n in sorted(self.optional)]
        if self.tsc_hz is not None:
            edits.append(f"tsc-frequency={self.tsc_hz}")
        return " ".join(["libvirt", what, *edits])


def _forbid_doctype(text: str, source: str) -> None:
    """Refuse DTDs and entity declarations before expat sees them (billion laughs, XXE)."""
    head = text.lower()
    if "<!doctype" in head or "<!entity" in head:
        raise LibvirtCpuError(
            f"{source}: the XML declares a DTD or entities, which a libvirt domain never has "
            "(virsh dumpxml writes none); give the plain `virsh dumpxml` output"
        )


def _root(text: str, source: str) -> ET.Element:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_XML_BYTES:
        raise LibvirtCpuError(
            f"{source}: larger than {MAX_XML_BYTES // 1024} KiB; a domain XML is a few KiB "
            "(virsh dumpxml VM)"
        )
    _forbid_doctype(text, source)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise LibvirtCpuError(f"{source}: not well-formed XML ({exc})") from None
    if root.tag not in ("domain", "cpu"):
        raise LibvirtCpuError(
            f"{source}: the root element is <{root.tag}>, not <domain> (virsh dumpxml VM) or <cpu>"
        )
    return root


def map_feature(name: str) -> tuple[str, str]:
    """A libvirt/QEMU feature name -> ("feature", project name) or ("aside", name).

    libvirt's x86 feature names are QEMU's (its cpu_map spellings differ only by
    ``_``/``-`` and a few aliases such as ``pclmuldq``, which the agent table
    accepts). First the QEMU models table, where QEMU itself located each name
    (so ``ibpb`` is AMD's 0x80000008 bit, ``stibp`` Intel's); then MSR and
    paravirtual names, kept aside; then the agent table's spellings. Raises
    LibvirtCpuError naming the feature.
    """
    known = qemu_table().feature_names.get(name)
    if known is not None:
        kind, value = known
        if kind == "feature":
            return "feature", value
        if kind in ("msr", "hypervisor"):
            return "aside", name
    if name in QEMU_MSR_FEATURES or name.startswith("vmx-") or name.startswith("kvm"):
        return "aside", name
    try:
        return "feature", canonical_name(name)
    except (AmbiguousFeatureError, UnknownFeatureError) as exc:
        raise LibvirtCpuError(str(exc.args[0])) from None


def _features(cpu: ET.Element) -> tuple[dict[str, set[str]], list[str]]:
    by_policy: dict[str, set[str]] = {"add": set(), "remove": set(), OPTIONAL: set()}
    aside: list[str] = []
    problems: list[str] = []
    for feature in cpu.findall("feature"):
        name = (feature.get("name") or "").strip()
        policy = (feature.get("policy") or "require").strip()
        if not name:
            problems.append("a <feature> without a name")
            continue
        if policy not in POLICIES:
            problems.append(
                f"feature {name!r} has policy {policy!r} (libvirt knows "
                f"{', '.join(sorted(POLICIES))})"
            )
            continue
        try:
            kind, value = map_feature(name)
        except LibvirtCpuError as exc:
            problems.append(str(exc))
            continue
        if kind == "aside":
            aside.append(name)
            continue
        key = "add" if policy in ADD_POLICIES else "remove" if policy in REMOVE_POLICIES else policy
        by_policy[key].add(value)
    if problems:
        raise LibvirtCpuError("; ".join(problems))
    return by_policy, sorted(set(aside))


def _sgx_epc(root: ET.Element) -> bool:
    devices = root.find("devices")
    if devices is None:
        return False
    return any(m.get("model") == "sgx-epc" for m in devices.findall("memory"))


def _tsc_hz(root: ET.Element, source: str) -> int | None:
    """``<clock><timer name='tsc' frequency='HZ'/>``: the guest's fixed TSC rate, in Hz.

    libvirt passes it to QEMU as ``tsc-frequency`` (Hz), which makes QEMU set the vCPU's
    rate with KVM_SET_TSC_KHZ at start and after a restore (target/i386/kvm/kvm.c,
    ``kvm_arch_set_tsc_khz``): a host whose rate differs and cannot scale a guest's TSC
    fails the vCPU. A timer without ``frequency`` fixes nothing.
    """
    clock = root.find("clock") if root.tag == "domain" else None
    if clock is None:
        return None
    for timer in clock.findall("timer"):
        if timer.get("name") != "tsc" or timer.get("frequency") is None:
            continue
        text = (timer.get("frequency") or "").strip()
        if not text.isdigit() or not 0 < int(text) < 1 << 64:
            raise LibvirtCpuError(
                f"{source}: <timer name='tsc' frequency={text!r}> is not a rate in Hz "
                "(libvirt: a positive integer, e.g. frequency='2450000000')"
            )
        return int(text)
    return None


def _phys(cpu: ET.Element | None, source: str) -> tuple[int | None, bool]:
    node = None if cpu is None else cpu.find("maxphysaddr")
    if node is None:
        return None, False
    mode = node.get("mode")
    bits = node.get("bits")
    if mode == "passthrough":
        return None, True
    if mode == "emulate" and bits is not None and bits.isdigit() and 32 <= int(bits) <= 64:
        return int(bits), False
    raise LibvirtCpuError(
        f"{source}: <maxphysaddr mode={mode!r} bits={bits!r}> is not mode='passthrough' or "
        "mode='emulate' with bits='32'..'64'"
    )


def parse_domain_cpu(text: str, source: str = "domain XML") -> DomainCpu:
    """The ``<cpu>`` of a domain XML (``virsh dumpxml``) or a bare ``<cpu>`` element."""
    root = _root(text, source)
    cpu = root if root.tag == "cpu" else root.find("cpu")
    sgx_epc = root.tag == "domain" and _sgx_epc(root)
    phys_bits, host_phys = _phys(cpu, source)
    tsc_hz = _tsc_hz(root, source)
    if cpu is None:
        return DomainCpu(
            source=source, mode=CUSTOM, model=QEMU_DEFAULT_MODEL, vendor=None,
            added=frozenset(), removed=frozenset(), optional=frozenset(), kept_aside=(),
            migratable=True, match=None, check=None, phys_bits=phys_bits,
            host_phys_bits=host_phys, sgx_epc=sgx_epc, tsc_hz=tsc_hz,
        )  # fmt: skip
    mode = cpu.get("mode") or CUSTOM
    if mode not in MODES:
        raise LibvirtCpuError(
            f"{source}: <cpu mode={mode!r}> is not one of {', '.join(MODES)} (libvirt)"
        )
    match = cpu.get("match")
    check = cpu.get("check")
    migratable = (cpu.get("migratable") or "on") != "off"
    model_node = cpu.find("model")
    model_text = (model_node.text or "").strip() if model_node is not None else ""
    problems: list[str] = []
    vendor = None
    vendor_node = cpu.find("vendor")
    if vendor_node is not None and (vendor_node.text or "").strip():
        try:
            vendor = normalize_vendor(vendor_node.text or "")
        except BaselineError as exc:
            problems.append(f"<vendor>: {exc}")
    model: str | None = None
    if mode == MAXIMUM:
        mode = HOST_PASSTHROUGH  # QEMU -cpu max under KVM: everything KVM offers
    if mode == CUSTOM and match == "minimum":
        # libvirt: "a better CPU will be provided to the guest if it is possible",
        # i.e. a constrained host-model; the guest may see more than the model.
        mode = HOST_MODEL
    if mode == CUSTOM:
        model = model_text or QEMU_DEFAULT_MODEL
        try:
            qemu_table().resolve(model)
        except QemuModelError as exc:
            problems.append(f"<model>: {exc}")
    try:
        by_policy, aside = _features(cpu)
    except LibvirtCpuError as exc:
        problems.append(str(exc))
    if problems:
        raise LibvirtCpuError(f"{source}: <cpu>: " + "; ".join(problems))
    return DomainCpu(
        source=source,
        mode=mode,
        model=model,
        vendor=vendor,
        added=frozenset(by_policy["add"]),
        removed=frozenset(by_policy["remove"]),
        optional=frozenset(by_policy[OPTIONAL]),
        kept_aside=tuple(aside),
        migratable=migratable,
        match=match,
        check=check,
        phys_bits=phys_bits,
        host_phys_bits=host_phys,
        sgx_epc=sgx_epc,
        tsc_hz=tsc_hz,
    )
