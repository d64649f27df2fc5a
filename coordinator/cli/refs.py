"""Host arguments on the command line: a registered host id, `dump:PATH`, or `model:`/`level:` names."""

from __future__ import annotations

import json
from typing import Any

from cpucompat.agent.cli.common import BASELINE_PREFIXES as BASELINE_PREFIXES
from cpucompat.agent.cli.common import CliError


def is_offline(arg: str) -> bool:
    """True for arguments the CLI can resolve itself (no coordinator needed)."""
    return arg.startswith(("dump:", *BASELINE_PREFIXES))


def load_dump_arg(arg: str) -> Any:
    """The validated capture of a `dump:PATH` argument (refused here, before any RPC)."""
    from cpucompat.agent.dumps import load_valid_dump

    path = arg.removeprefix("dump:")
    if not path:
        raise CliError("dump: needs a file path, e.g. dump:/tmp/host.txt")
    return load_valid_dump(path)  # a DumpError is an input error: exit 2 (agent/errors.py)


def domain_ref(arg: str, vendor: str | None = None) -> Any:
    """A decisions.Ref for dumps and models (offline use)."""
    from cpucompat.coordinator.compatibility import Ref

    if arg.startswith("dump:"):
        return Ref.dump(arg.removeprefix("dump:"), load_dump_arg(arg))
    if arg.startswith(BASELINE_PREFIXES):
        return Ref.model(arg, vendor)
    raise CliError(f"{arg!r} is a registered host id: it needs a coordinator (--coordinator)")


def proto_ref(arg: str, vendor: str | None = None) -> Any:
    """A HostRef message: dumps are decoded here and sent as raw leaves."""
    from cpucompat.agent.wire import capture_to_proto
    from cpucompat.v1 import coordinator_service_pb2 as pb

    if arg.startswith("dump:"):
        capture = load_dump_arg(arg)
        return pb.HostRef(
            dump=pb.DumpRef(
                name=arg.removeprefix("dump:"), raw=capture_to_proto(capture, compact=True)
            )
        )
    if arg.startswith(BASELINE_PREFIXES):
        return pb.HostRef(model=arg, vendor=vendor or "")
    return pb.HostRef(host_id=arg)


def check_baseline(arg: str, vendor: str | None) -> None:
    """Resolve a model/level name early, so a typo is a usage error with suggestions."""
    if not arg.startswith(BASELINE_PREFIXES):
        return
    from cpucompat.coordinator.domain.baselines import resolve_baseline

    resolve_baseline(arg, vendor)


def read_libvirt_xml(path: str) -> str:
    """A domain XML file's text (``virsh dumpxml``), bounded; errors are usage errors."""
    from cpucompat.coordinator.domain.libvirt_cpu import MAX_XML_BYTES

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_XML_BYTES + 1)
    except OSError as exc:
        raise CliError(f"--libvirt-xml {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_XML_BYTES:
        raise CliError(
            f"--libvirt-xml {path}: larger than {MAX_XML_BYTES // 1024} KiB; give the output "
            "of `virsh dumpxml VM`"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CliError(f"--libvirt-xml {path}: not UTF-8 text ({exc.reason})") from None


def _data_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def reason_doc(reason: Any) -> dict[str, Any]:
    return {
        "code": reason.code,
        "detail": reason.detail,
        "features": list(reason.features),
        "data": {k: _data_value(v) for k, v in sorted(reason.data.items())},
    }


def verdict_doc(verdict: Any) -> dict[str, Any]:
    """A Verdict message in the same JSON shape as the domain's Verdict.to_json()."""
    return {
        "compatible": verdict.compatible,
        "reasons": [reason_doc(r) for r in verdict.reasons],
        "warnings": [reason_doc(w) for w in verdict.warnings],
        "summary": verdict.summary,
        "view": verdict.view,
    }
