"""The project's own raw-leaf JSON: what `probe --json` prints under "raw".

Hex strings keep it readable next to vendor manuals and other dump tools;
the same object re-imports with `probe --from-dump`, so a dump taken on one
host replays anywhere.

An optional ``"hypervisor_offer"`` object records what the host's hypervisor
offered guests (KVM's supported CPUID leaves and feature MSRs) beside the raw
leaves, so a recorded offer replays too; ``"hypervisor_offer_missing"`` keeps
the reason when there was none. Both are additive: version 1 readers that do
not know them ignore them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .raw import HostTsc, LeafKey, LogicalCpu, RawCapture, RawDataError, RawOffer, Regs

FORMAT_NAME = "cpucompat-raw"
FORMAT_VERSION = 1


def capture_to_json(capture: RawCapture) -> dict[str, Any]:
    """The raw leaves of every logical CPU, as a JSON-ready dict."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "source": capture.source,
        "microcode": capture.microcode,
        **({"extra": dict(sorted(capture.extra.items()))} if capture.extra else {}),
        **({"host_tsc": _host_tsc_to_json(capture.host_tsc)} if capture.host_tsc else {}),
        **({"warnings": list(capture.warnings)} if capture.warnings else {}),
        "cpus": [
            {
                "cpu": cpu.index,
                "xcr0": None if cpu.xcr0 is None else f"0x{cpu.xcr0:x}",
                "leaves": [
                    [f"0x{leaf:08x}", f"0x{sub:02x}", *(f"0x{r:08x}" for r in regs)]
                    for (leaf, sub), regs in cpu.sorted_leaves()
                ],
            }
            for cpu in capture.cpus
        ],
        **({"hypervisor_offer": offer_to_json(capture.offer)} if capture.offer else {}),
        **(
            {"hypervisor_offer_missing": capture.offer_missing}
            if capture.offer_missing and not capture.offer
            else {}
        ),
    }


def _host_tsc_to_json(tsc: HostTsc) -> dict[str, Any]:
    return {
        "khz": tsc.khz,
        "source": tsc.source,
        "scaling": tsc.scaling,
        "scaling_source": tsc.scaling_source,
        "missing": tsc.missing,
    }


def _host_tsc_from_json(doc: Any) -> HostTsc:
    """The kernel's TSC report as the JSON form carries it (validated later, with the capture)."""
    if not isinstance(doc, dict):
        raise RawDataError('"host_tsc" must be an object')
    khz = doc.get("khz")
    scaling = doc.get("scaling")
    texts = {k: doc.get(k, "") for k in ("source", "scaling_source", "missing")}
    if (khz is not None and (not isinstance(khz, int) or isinstance(khz, bool))) or (
        scaling is not None and not isinstance(scaling, bool)
    ):
        raise RawDataError('"host_tsc": khz must be an integer or null, scaling true/false/null')
    if not all(isinstance(v, str) for v in texts.values()):
        raise RawDataError('"host_tsc": source, scaling_source and missing must be strings')
    return HostTsc(khz=khz, scaling=scaling, **texts)


def _leaf_rows(leaves: Mapping[LeafKey, Regs]) -> list[list[str]]:
    return [
        [f"0x{leaf:08x}", f"0x{sub:02x}", *(f"0x{r:08x}" for r in regs)]
        for (leaf, sub), regs in sorted(leaves.items())
    ]


def offer_to_json(offer: RawOffer) -> dict[str, Any]:
    """The hypervisor's offer as recorded: leaves like a CPU's, MSRs as [index, value]."""
    return {
        "kind": offer.kind,
        "api_version": offer.api_version,
        "leaves": _leaf_rows(offer.leaves),
        "msrs": [[f"0x{i:x}", f"0x{v:x}"] for i, v in sorted(offer.msrs.items())],
    }


def _leaves_from_json(leaves_doc: Any, where: str) -> dict[LeafKey, Regs]:
    if not isinstance(leaves_doc, list) or not leaves_doc:
        raise RawDataError(f"{where}: expected a non-empty list")
    leaves: dict[LeafKey, Regs] = {}
    for m, row in enumerate(leaves_doc):
        at = f"{where}[{m}]"
        if not isinstance(row, list) or len(row) != 6:
            raise RawDataError(f"{at}: expected [leaf, subleaf, eax, ebx, ecx, edx]")
        leaf = _hex(row[0], f"{at} leaf")
        sub = _hex(row[1], f"{at} subleaf")
        regs = (
            _hex(row[2], f"{at} eax"),
            _hex(row[3], f"{at} ebx"),
            _hex(row[4], f"{at} ecx"),
            _hex(row[5], f"{at} edx"),
        )
        if (leaf, sub) in leaves and leaves[(leaf, sub)] != regs:
            raise RawDataError(f"{at}: leaf 0x{leaf:x}.{sub} given twice with different values")
        leaves[(leaf, sub)] = regs
    return leaves


def offer_from_json(doc: Any) -> RawOffer:
    """Parse what :func:`offer_to_json` wrote (a recorded offer, replayed as recorded)."""
    where = "hypervisor_offer"
    if not isinstance(doc, dict):
        raise RawDataError(f"{where}: expected an object")
    kind = doc.get("kind")
    if not isinstance(kind, str):
        raise RawDataError(f'{where}.kind: expected a string such as "kvm"')
    api = doc.get("api_version")
    if not isinstance(api, int) or isinstance(api, bool) or api < 0:
        raise RawDataError(f"{where}.api_version: expected a non-negative integer")
    msrs_doc = doc.get("msrs", [])
    if not isinstance(msrs_doc, list):
        raise RawDataError(f"{where}.msrs: expected a list of [index, value]")
    msrs: dict[int, int] = {}
    for n, row in enumerate(msrs_doc):
        at = f"{where}.msrs[{n}]"
        if not isinstance(row, list) or len(row) != 2:
            raise RawDataError(f"{at}: expected [index, value]")
        index = _hex(row[0], f"{at} index")
        if index in msrs:
            raise RawDataError(f"{at}: MSR 0x{index:x} given twice")
        msrs[index] = _hex(row[1], f"{at} value", 2**64 - 1)
    return RawOffer(
        kind=kind,
        api_version=api,
        leaves=_leaves_from_json(doc.get("leaves"), f"{where}.leaves"),
        msrs=msrs,
    )


def _hex(value: Any, what: str, limit: int = 0xFFFF_FFFF) -> int:
    if not isinstance(value, str):
        raise RawDataError(f"{what}: expected a hex string such as '0x0000000d', got {value!r}")
    try:
        number = int(value, 16)
    except ValueError:
        raise RawDataError(f"{what}: {value!r} is not a hex number") from None
    if not 0 <= number <= limit:
        raise RawDataError(f"{what}: {value!r} is out of range")
    return number


def capture_from_json(
    doc: Any, origin: str | None = None, cpus: tuple[LogicalCpu, ...] | None = None
) -> RawCapture:
    """Parse the dict produced by :func:`capture_to_json` (or `probe --json`'s "raw").

    ``cpus`` given: the logical CPUs come from elsewhere (the coordinator's store keeps
    them as leaf classes) and the document's "cpus" is not read.
    """
    if isinstance(doc, dict) and "raw" in doc and "format" not in doc:
        doc = doc["raw"]  # a whole `probe --json` document
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise RawDataError(f'not a {FORMAT_NAME} document (missing "format": "{FORMAT_NAME}")')
    if doc.get("version") != FORMAT_VERSION:
        raise RawDataError(
            f"{FORMAT_NAME} version {doc.get('version')!r} is not supported; expected {FORMAT_VERSION}"
        )
    if cpus is None:
        cpus = _cpus_from_json(doc.get("cpus"))
    return _capture_fields_from_json(doc, origin, cpus)


def _cpus_from_json(cpus_doc: Any) -> tuple[LogicalCpu, ...]:
    if not isinstance(cpus_doc, list) or not cpus_doc:
        raise RawDataError('"cpus" must be a non-empty list')
    cpus: list[LogicalCpu] = []
    for n, cpu_doc in enumerate(cpus_doc):
        where = f"cpus[{n}]"
        if not isinstance(cpu_doc, dict):
            raise RawDataError(f"{where}: expected an object")
        index = cpu_doc.get("cpu", n)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise RawDataError(f"{where}.cpu: expected a non-negative integer")
        xcr0_doc = cpu_doc.get("xcr0")
        xcr0 = None if xcr0_doc is None else _hex(xcr0_doc, f"{where}.xcr0", 2**64 - 1)
        leaves = _leaves_from_json(cpu_doc.get("leaves"), f"{where}.leaves")
        cpus.append(LogicalCpu(index=index, leaves=leaves, xcr0=xcr0))
    return tuple(cpus)


def _capture_fields_from_json(
    doc: dict[str, Any], origin: str | None, cpus: tuple[LogicalCpu, ...]
) -> RawCapture:
    source = doc.get("source")
    if not isinstance(source, str):
        source = "unknown"
    microcode = doc.get("microcode")
    extra_doc = doc.get("extra")
    extra = {str(k): str(v) for k, v in extra_doc.items()} if isinstance(extra_doc, dict) else {}
    tsc_doc = doc.get("host_tsc")
    warnings_doc = doc.get("warnings")
    warnings = tuple(str(w) for w in warnings_doc) if isinstance(warnings_doc, list) else ()
    offer_doc = doc.get("hypervisor_offer")
    missing = doc.get("hypervisor_offer_missing")
    return RawCapture(
        cpus=cpus,
        source=source,
        microcode=microcode if isinstance(microcode, str) else None,
        origin=origin,
        extra=extra,
        host_tsc=None if tsc_doc is None else _host_tsc_from_json(tsc_doc),
        warnings=warnings,
        offer=None if offer_doc is None else offer_from_json(offer_doc),
        offer_missing=missing if isinstance(missing, str) and offer_doc is None else None,
    )
