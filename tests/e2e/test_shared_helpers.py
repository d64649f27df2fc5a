"""The helpers several modules share (one copy each): vendor string, dump loading, file writes."""

from __future__ import annotations

import errno
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cpucompat.agent.atomic_file import atomic_write
from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import DumpError, load_dump, load_dump_profile, load_valid_dump
from cpucompat.agent.raw import vendor_string
from tests.support.daemons import CLI, run_cli
from tests.support.paths import FIXTURES

TWO_CPUS = FIXTURES / "dumps" / "cpuid-r-two-cpus.txt"
LEAF_0 = "0x00000000 0x00: eax=0x00000010 "
AMD_LEAF_0 = LEAF_0 + "ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65"
INTEL_LEAF_0 = LEAF_0 + "ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69"


@pytest.mark.parametrize(
    ("fixture", "vendor"),
    [
        ("processors/dev-amd-epyc-kvm.cpuid-r.txt", "AuthenticAMD"),
        ("processors/intel-skylake-leaf2-edited.cpuid-r.txt", "GenuineIntel"),
        ("dumps/aida-repeated-tags.txt", "CentaurHauls"),
        ("dumps/libcpuid-single.txt", "GenuineIntel"),
    ],
)
def test_vendor_string_reads_ebx_edx_ecx_of_real_leaf_0(fixture: str, vendor: str) -> None:
    capture = load_dump(FIXTURES / fixture)
    for cpu in capture.cpus:
        assert vendor_string(cpu.leaves[(0, 0)]) == vendor


def test_vendor_string_keeps_every_byte_of_a_damaged_leaf() -> None:
    # GenuineIntel's leaf 0 with the "e" of ECX's "ntel" replaced by 0xFF: the validator
    # must see 12 characters to say what is wrong, not a shorter or undecodable string.
    damaged = (0xD, 0x756E6547, 0x6CFF746E, 0x49656E69)
    assert vendor_string(damaged) == "GenuineInt\xffl"


def _edited(tmp_path: Path, name: str, cpu: int, new_leaf_0: str) -> Path:
    """The two-CPU fixture with logical CPU ``cpu``'s leaf 0 registers replaced."""
    parts = TWO_CPUS.read_text().split(AMD_LEAF_0)
    assert len(parts) == 3  # one leaf 0 per CPU
    text = AMD_LEAF_0.join(parts[: cpu + 1]) + new_leaf_0 + AMD_LEAF_0.join(parts[cpu + 1 :])
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_dump_that_parses_but_no_processor_returns_is_refused_naming_the_file(
    tmp_path: Path,
) -> None:
    bad = _edited(tmp_path, "bad-vendor.txt", 0, AMD_LEAF_0.replace("0x68747541", "0x68747501"))
    load_dump(bad)  # the text itself is well formed
    for load in (load_valid_dump, load_dump_profile):
        with pytest.raises(DumpError, match=r"bad-vendor\.txt: logical CPU 0: vendor string"):
            load(bad)
    # every command that takes a dump file says the same
    good = tmp_path / "good.stamp"
    assert run_cli("stamp", "--out", str(good), "--from-dump", str(TWO_CPUS)).returncode == 0
    for args in (
        ("probe", "--from-dump", str(bad)),
        ("probe", "--raw", "--from-dump", str(bad)),
        ("guard", str(good), "--from-dump", str(bad)),
        ("check", f"dump:{bad}", f"dump:{TWO_CPUS}"),
        ("stamp", "--out", str(tmp_path / "vm.stamp"), "--from-dump", str(bad)),
    ):
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "bad-vendor.txt" in result.stderr and "vendor string" in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    assert not (tmp_path / "vm.stamp").exists()


def test_a_dump_that_validates_but_cannot_be_decoded_names_the_file(tmp_path: Path) -> None:
    mixed = _edited(tmp_path, "mixed.txt", 1, INTEL_LEAF_0)
    assert len(load_valid_dump(mixed).cpus) == 2
    with pytest.raises(DumpError, match=r"mixed\.txt: logical CPUs 0 and 1 report different"):
        load_dump_profile(mixed)


def test_load_dump_profile_decodes_what_the_file_holds() -> None:
    profile = load_dump_profile(TWO_CPUS)
    assert profile == decode(load_dump(TWO_CPUS))
    assert profile.raw.origin == str(TWO_CPUS) and profile.logical_cpu_count == 2


# Sets the limit in a fresh interpreter and execs the command: a preexec_fn would run in a
# fork of this process, where gRPC's fork handlers (loaded by other tests) may abort it.
LIMITED = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG) instead of killing
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
os.execv(sys.argv[2], sys.argv[2:])
"""


def _file_size_limited(limit: int, *argv: str) -> list[str]:
    """``argv`` run with writes stopped at ``limit`` bytes per file (EFBIG, as on a full quota)."""
    return [sys.executable, "-c", LIMITED, str(limit), *argv]


WRITE_IN_CHILD = """
import sys
from cpucompat.agent.atomic_file import atomic_write
try:
    atomic_write(sys.argv[1], "new content " * 1000)
except OSError as exc:
    print(exc.errno, exc.strerror)
    sys.exit(7)
"""


def test_atomic_write_failing_midway_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old content\n")
    result = subprocess.run(
        _file_size_limited(100, sys.executable, "-c", WRITE_IN_CHILD, str(target)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 7, result.stderr
    assert result.stdout.split()[0] == str(errno.EFBIG)  # it wrote 100 bytes, then failed
    assert target.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary left


def test_atomic_write_replaces_the_content_with_the_requested_mode(tmp_path: Path) -> None:
    target = tmp_path / "policy.json"
    target.write_text("old content that is longer than the new one\n")
    atomic_write(target, "new\n", mode=0o600)
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.json"]


def test_a_stamp_that_cannot_be_written_leaves_the_old_stamp(tmp_path: Path) -> None:
    out = tmp_path / "vm.stamp"
    made = run_cli("stamp", "--out", str(out), "--from-dump", str(TWO_CPUS))
    assert made.returncode == 0, made.stderr
    before = out.read_bytes()
    again = subprocess.run(
        _file_size_limited(
            len(before) // 2, *CLI, "stamp", "--out", str(out), "--from-dump", str(TWO_CPUS)
        ),
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2, again.stderr
    assert f"cannot write {out}: File too large" in again.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm.stamp"]
    assert run_cli("guard", str(out), "--from-dump", str(TWO_CPUS)).returncode == 0


def test_enum_names_lose_exactly_their_enums_prefix() -> None:
    from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

    from cpucompat.agent.wire import enum_name, enum_prefix
    from cpucompat.v1 import coordinator_service_pb2, profile_pb2

    assert enum_name(coordinator_service_pb2.OfflineAction, 2) == "SAVE"
    assert enum_name(coordinator_service_pb2.EventKind, 6) == "HOST_REMOVED"
    assert enum_name(coordinator_service_pb2.HostStatus, 1) == "ONLINE"
    seen = 0
    for module in (coordinator_service_pb2, profile_pb2):
        for enum_desc in module.DESCRIPTOR.enum_types_by_name.values():
            enum = EnumTypeWrapper(enum_desc)
            prefix = enum_prefix(enum)
            assert prefix.endswith("_") and enum.Name(0) == prefix + "UNSPECIFIED", enum_desc.name
            for value in enum.values():
                short = enum_name(enum, value)
                assert short and prefix + short == enum.Name(value), (enum_desc.name, short)
            seen += 1
    assert seen >= 5
