"""A VM's own CPU definition: a libvirt domain's <cpu>, offline (`check libvirt:FILE`) and
registered (`vm register --libvirt-xml`), on real dumps through the real CLI and coordinator."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from cpucompat.coordinator.domain.libvirt_cpu import LibvirtCpuError, parse_domain_cpu
from cpucompat.coordinator.domain.requirement import Requirement
from cpucompat.coordinator.domain.sides import requirement_of_domain
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import FIXTURES
from tests.support.shared import shared_dump, shared_profile

MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
ZEN1 = "amd-zen-amd-ryzen-5-1500x-quad-core-processor.txt"
SKYLAKE_SP = "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt"
SAPPHIRE_RAPIDS = "instlatx64-GenuineIntel00806F8_SapphireRapids_05_CPUID.txt"
SUNNY_COVE = "intel-x86-64-sunny-cove-intel-core-i5-1035g4-cpu.txt"  # 1.4976 GHz TSC
ROME_CUSTOM = FIXTURES / "libvirt" / "epyc-rome-custom.xml"
HOST_MODEL = FIXTURES / "libvirt" / "host-model-inactive.xml"

MILAN_ONLY = ["disable", "erms", "fsrm", "invpcid", "pcid", "pku", "vaes", "vpclmulqdq"]


def domain(tmp_path: Path, cpu: str, name: str = "vm.xml") -> Path:
    """A domain XML as virsh dumpxml writes it, with ``cpu`` as its <cpu> element."""
    path = tmp_path / name
    path.write_text(
        "<domain type='kvm'>\n  <name>vm</name>\n  <memory unit='KiB'>2097152</memory>\n"
        f"  {cpu}\n  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
        "  </devices>\n</domain>\n"
    )
    return path


def custom(model: str, *features: tuple[str, str]) -> str:
    lines = "".join(f"<feature policy='{p}' name='{n}'/>" for p, n in features)
    return f"<cpu mode='custom' match='exact' check='partial'><model>{model}</model>{lines}</cpu>"


def check(source: Path, target: str, *extra: str) -> tuple[int, dict]:
    out = run_cli("check", f"libvirt:{source}", f"dump:{shared_dump(target)}", "--json", *extra)
    assert out.returncode in (0, 3), out.stderr
    return out.returncode, json.loads(out.stdout)


def codes(doc: dict) -> list[str]:
    return [r["code"] for r in doc["reasons"]]


def missing(doc: dict) -> set[str]:
    return {f for r in doc["reasons"] if r["code"] == "MISSING_FEATURES" for f in r["features"]}


# --- custom: a QEMU model with the domain's features -----------------------------------------


def test_custom_epyc_rome_domain_restores_on_milan_and_not_on_zen1() -> None:
    rc, doc = check(ROME_CUSTOM, MILAN)
    assert rc == 0 and doc["compatible"], doc
    rc, doc = check(ROME_CUSTOM, ZEN1)
    assert rc == 3 and {"clwb", "rdpid", "wbnoinvd"} <= missing(doc)


def test_required_feature_makes_skylake_server_refuse_what_sapphire_rapids_takes(
    tmp_path: Path,
) -> None:
    plain = domain(tmp_path, custom("Skylake-Server"), "plain.xml")
    vnni = domain(tmp_path, custom("Skylake-Server", ("require", "avx512vnni")), "vnni.xml")
    assert check(plain, SKYLAKE_SP)[0] == 0
    rc, doc = check(vnni, SKYLAKE_SP)
    assert rc == 3 and missing(doc) == {"avx512_vnni"}
    assert check(vnni, SAPPHIRE_RAPIDS)[0] == 0


def test_cascadelake_server_is_refused_on_skylake_server_for_vnni_and_spectre_bits(
    tmp_path: Path,
) -> None:
    cascade = domain(tmp_path, custom("Cascadelake-Server", ("require", "avx512vnni")))
    rc, doc = check(cascade, SKYLAKE_SP)
    assert rc == 3 and "avx512_vnni" in missing(doc)


def test_disabling_features_turns_a_refusal_into_compatible(tmp_path: Path) -> None:
    milan = domain(tmp_path, custom("EPYC-Milan"), "milan.xml")
    rc, doc = check(milan, ROME)
    assert rc == 3 and {"erms", "fsrm", "invpcid", "pcid", "pku"} <= missing(doc)
    cut = custom("EPYC-Milan", *(("disable", n) for n in MILAN_ONLY[1:]))
    rc, doc = check(domain(tmp_path, cut, "milan-cut.xml"), ROME)
    assert rc == 0 and doc["compatible"], doc  # PKRU state went with pku
    forbid = custom("EPYC-Milan", *(("forbid", n) for n in MILAN_ONLY[1:]))
    assert check(domain(tmp_path, forbid, "milan-forbid.xml"), ROME)[0] == 0


# --- host modes: the boot host's CPU ---------------------------------------------------------


def test_host_model_drops_invtsc_where_passthrough_without_migration_keeps_it(
    tmp_path: Path,
) -> None:
    boot = f"dump:{shared_dump(SUNNY_COVE)}"
    rc, doc = check(HOST_MODEL, SAPPHIRE_RAPIDS, "--boot-host", boot)
    assert rc == 0, doc  # QEMU marks invtsc unmigratable: host-model never has it
    pinned = domain(tmp_path, "<cpu mode='host-passthrough' migratable='off'/>")
    rc, doc = check(pinned, SAPPHIRE_RAPIDS, "--boot-host", boot)
    assert rc == 3 and codes(doc) == ["TSC_FREQUENCY_DIFFERS"]
    asked = domain(
        tmp_path, "<cpu mode='host-model'><feature policy='require' name='invtsc'/></cpu>", "i.xml"
    )
    rc, doc = check(asked, SAPPHIRE_RAPIDS, "--boot-host", boot)
    assert rc == 3 and codes(doc) == ["TSC_FREQUENCY_DIFFERS"]


def test_an_optional_invtsc_the_boot_host_has_reaches_the_guest(tmp_path: Path) -> None:
    """libvirt gives an optional feature wherever the host has it: the TSC rule applies."""
    boot = f"dump:{shared_dump(SUNNY_COVE)}"
    optional = domain(
        tmp_path,
        "<cpu mode='custom' match='exact'><model fallback='forbid'>Icelake-Server-noTSX</model>"
        "<feature policy='optional' name='invtsc'/></cpu>",
        "o.xml",
    )
    required = domain(
        tmp_path,
        "<cpu mode='custom' match='exact'><model fallback='forbid'>Icelake-Server-noTSX</model>"
        "<feature policy='require' name='invtsc'/></cpu>",
        "r.xml",
    )
    rc_required, doc_required = check(required, SAPPHIRE_RAPIDS, "--boot-host", boot)
    rc_optional, doc_optional = check(optional, SAPPHIRE_RAPIDS, "--boot-host", boot)
    assert "TSC_FREQUENCY_DIFFERS" in codes(doc_required)
    assert (rc_optional, codes(doc_optional)) == (rc_required, codes(doc_required))


def test_host_passthrough_is_its_boot_hosts_requirement(tmp_path: Path) -> None:
    xml = domain(tmp_path, "<cpu mode='host-passthrough' check='none'/>")
    rc, doc = check(xml, ROME, "--boot-host", f"dump:{shared_dump(MILAN)}")
    plain = run_cli("check", f"dump:{shared_dump(MILAN)}", f"dump:{shared_dump(ROME)}", "--json")
    host = json.loads(plain.stdout)
    assert rc == 3 and doc["reasons"] == host["reasons"]  # the same refusal, feature by feature
    assert {"erms", "fsrm", "invpcid", "pku"} <= missing(doc)


def test_host_mode_without_a_boot_host_is_a_usage_error() -> None:
    out = run_cli("check", f"libvirt:{HOST_MODEL}", f"dump:{shared_dump(MILAN)}")
    assert out.returncode == 2 and "--boot-host" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# --- bad input: one line naming it, exit 2 ----------------------------------------------------


def test_unknown_model_and_feature_are_named(tmp_path: Path) -> None:
    xml = domain(tmp_path, custom("EPYC-Roma", ("require", "avx9000")))
    out = run_cli("check", f"libvirt:{xml}", f"dump:{shared_dump(MILAN)}")
    assert out.returncode == 2
    assert "EPYC-Roma" in out.stderr and "avx9000" in out.stderr and "EPYC-Rome" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_dtd_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "laughs.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        "<domain><cpu mode='custom'><model>&b;</model></cpu></domain>\n"
    )
    out = run_cli("check", f"libvirt:{path}", f"dump:{shared_dump(MILAN)}")
    assert out.returncode == 2 and "DTD" in out.stderr


def test_no_cpu_element_is_qemus_default_model(tmp_path: Path) -> None:
    bare = tmp_path / "bare.xml"
    bare.write_text("<domain type='kvm'><name>old</name></domain>\n")
    qemu64 = run_cli("check", "model:qemu/qemu64", f"dump:{shared_dump(ZEN1)}", "--json")
    rc, doc = check(bare, ZEN1)
    assert rc == qemu64.returncode and codes(doc) == codes(json.loads(qemu64.stdout))


# --- registered: vm register --libvirt-xml ------------------------------------------------------


def test_vm_register_takes_its_requirement_from_the_domain_and_keeps_it(tmp_path: Path) -> None:
    sunny, spr = shared_dump(SUNNY_COVE), shared_dump(SAPPHIRE_RAPIDS)
    coord = start_coordinator(tmp_path, "--allow-replayed")
    agents = [
        start_agent(tmp_path, coord.address, host, "--replay-dump", str(dump))
        for host, dump in (("icl-1", sunny), ("spr-1", spr))
    ]
    at = ("--coordinator", coord.address)
    vnni = domain(tmp_path, custom("Skylake-Client", ("require", "avx512vnni")), "vnni.xml")
    pinned = domain(tmp_path, "<cpu mode='host-passthrough' migratable='off'/>", "pin.xml")
    bad = domain(tmp_path, custom("Skylake-Client", ("require", "avx9000")), "bad.xml")

    def register(vm: str, xml: Path, *flags: str) -> object:
        return run_cli("vm", "register", vm, "--cluster", "prod", "--libvirt-xml", str(xml),
                       "--json", *flags, *at)  # fmt: skip

    def targets(vm: str) -> dict[str, list[str]]:
        doc = json.loads(run_cli("vm", "targets", vm, "--json", *at).stdout)
        return {t["host"]: [r["code"] for r in t["reasons"]] for t in doc["targets"]}

    def vms() -> dict[str, dict]:
        return {v["name"]: v for v in json.loads(run_cli("vm", "list", "--json", *at).stdout)}

    try:

        def hosts() -> list:
            out = run_cli("hosts", "--json", *at)
            return json.loads(out.stdout) if out.returncode == 0 else []

        wait_until(lambda: len(hosts()) == 2, what="both hosts registered")
        out = register("vnni-1", vnni)  # custom: needs no boot host
        assert out.returncode == 0, out.stderr
        assert "avx512_vnni" in json.loads(out.stdout)["vm"]["requirement"]["features"]
        # The model's 40-bit phys-bits (and its TSX) exceed the Ice Lake laptop; not SPR's.
        assert targets("vnni-1") == {
            "icl-1": ["MISSING_FEATURES", "PHYS_ADDR_BITS_SMALLER"],
            "spr-1": [],
        }
        out = register("pin-1", pinned)
        assert out.returncode == 2 and "--boot-host" in out.stderr
        out = register("pin-1", pinned, "--boot-host", "icl-1")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["vm"]["requirement"]["invariant_tsc"] is True
        assert targets("pin-1") == {"spr-1": ["TSC_FREQUENCY_DIFFERS"]}
        fixed = domain(
            tmp_path,
            custom("Skylake-Client") + "<clock><timer name='tsc' frequency='1497600000'/></clock>",
            "tsc.xml",
        )
        out = register("tsc-1", fixed)  # fixed at the Ice Lake laptop's 1.4976 GHz
        assert out.returncode == 0, out.stderr
        assert "TSC_FREQUENCY_DIFFERS" in targets("tsc-1")["spr-1"]
        assert "TSC_FREQUENCY_DIFFERS" not in targets("tsc-1")["icl-1"]
        out = register("bad-1", bad)
        assert out.returncode == 2 and "avx9000" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        request = pb.RegisterVmRequest(vm_name="bad-2", cluster="prod", libvirt_xml=bad.read_text())
        with (
            grpc.insecure_channel(coord.address) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            pb_grpc.VmServiceStub(channel).RegisterVm(request)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "avx9000" in (refused.value.details() or "")
        assert set(vms()) == {"vnni-1", "pin-1", "tsc-1"}  # nothing stored for either refusal
        changed = register("vnni-1", domain(tmp_path, custom("Skylake-Client"), "plain.xml"))
        assert changed.returncode == 2 and "--rebooted" in changed.stderr
    finally:
        for a in agents:
            a.kill()
        coord.stop()
    restarted = start_coordinator(tmp_path, "--allow-replayed", log="again.log")
    at = ("--coordinator", restarted.address)
    try:
        kept = vms()
        assert kept["pin-1"]["cpu_definition"] == "libvirt host-passthrough migratable=off"
        assert kept["vnni-1"]["cpu_definition"] == "libvirt custom Skylake-Client +avx512_vnni"
        assert "avx512_vnni" in kept["vnni-1"]["requirement"]["features"]
        assert kept["pin-1"]["requirement"]["invariant_tsc"] is True
        assert kept["tsc-1"]["cpu_definition"] == (
            "libvirt custom Skylake-Client tsc-frequency=1497600000"
        )
    finally:
        restarted.stop()


def test_a_registered_fixed_tsc_rate_is_on_the_wire_and_in_the_cli(tmp_path: Path) -> None:
    """A custom VM (no boot host) with `<timer name='tsc' frequency>`: its requirement says
    the rate is fixed, over gRPC (VmRequirement.tsc_fixed) and in both CLI outputs."""
    model = custom("Skylake-Server")
    fixed = domain(
        tmp_path, model + "<clock><timer name='tsc' frequency='3000000000'/></clock>", "f.xml"
    )
    plain = domain(tmp_path, model, "plain.xml")
    coord = start_coordinator(tmp_path)
    at = ("--coordinator", coord.address)
    try:
        register = ("vm", "register", "--cluster", "prod", "--libvirt-xml")
        out = run_cli(*register[:2], "fixed-1", *register[2:], str(fixed), "--json", *at)
        assert out.returncode == 0, out.stderr
        requirement = json.loads(out.stdout)["vm"]["requirement"]
        assert requirement["tsc_fixed"] is True and requirement["tsc_hz"] == 3_000_000_000
        human = run_cli(*register[:2], "plain-1", *register[2:], str(plain), *at)
        assert human.returncode == 0, human.stderr
        assert "TSC" not in human.stdout  # no rate of its own, no invtsc: nothing pinned
        again = run_cli(*register[:2], "fixed-1", *register[2:], str(fixed), *at)
        assert again.returncode == 0, again.stderr
        assert "TSC fixed at 3000000000 Hz" in again.stdout
        with grpc.insecure_channel(coord.address) as channel:
            listed = pb_grpc.VmServiceStub(channel).ListVms(pb.ListVmsRequest(cluster="prod"))
        wire = {vm.name: vm.requirement for vm in listed.vms}
        assert wire["fixed-1"].tsc_fixed and wire["fixed-1"].tsc_hz == 3_000_000_000
        assert not wire["plain-1"].tsc_fixed and wire["plain-1"].tsc_hz == 0
    finally:
        coord.stop()


# --- the domain rules, one by one (real dumps, no daemon) ---------------------------------


def requirement(cpu: str, boot: str | None = None, root: str = "domain") -> Requirement:
    text = cpu if root == "cpu" else f"<domain type='kvm'><name>vm</name>{cpu}</domain>"
    profile = shared_profile(boot) if boot else None
    return requirement_of_domain(parse_domain_cpu(text, "vm.xml"), profile, "vm")


def test_optional_features_follow_the_boot_host_and_count_without_one() -> None:
    cpu = custom("Skylake-Server", ("optional", "avx512vnni"), ("optional", "sse4.2"))
    assert "avx512_vnni" in requirement(cpu).features  # no boot host: the stricter side
    on_skx = requirement(cpu, SKYLAKE_SP)
    assert "avx512_vnni" not in on_skx.features and "sse4_2" in on_skx.features
    assert "avx512_vnni" in requirement(cpu, SAPPHIRE_RAPIDS).features


def test_match_minimum_is_a_constrained_host_model() -> None:
    cpu = "<cpu match='minimum'><model>Skylake-Server</model></cpu>"
    with pytest.raises(LibvirtCpuError, match="boot host"):
        requirement(cpu)
    spr = requirement(cpu, SAPPHIRE_RAPIDS)
    assert {"amx_tile", "avx512_fp16"} <= spr.features  # more than the model: SPR's own


def test_address_width_and_sgx_epc_come_from_the_domain() -> None:
    wide = "<cpu mode='custom'><model>Icelake-Server</model><maxphysaddr mode='emulate' bits='46'/></cpu>"
    assert requirement(wide).physical_bits == 46
    assert requirement(custom("Icelake-Server")).physical_bits == 40
    host = "<cpu mode='custom'><model>Icelake-Server</model><maxphysaddr mode='passthrough'/></cpu>"
    spr = shared_profile(SAPPHIRE_RAPIDS)
    assert requirement(host, SAPPHIRE_RAPIDS).physical_bits == spr.address_sizes.physical_bits
    epc = (
        "<cpu mode='host-passthrough'/><devices><memory model='sgx-epc'><target>"
        "<size unit='KiB'>65536</size></target></memory></devices>"
    )
    with_epc, without = (
        requirement(epc, SUNNY_COVE),
        requirement("<cpu mode='host-passthrough'/>", SUNNY_COVE),
    )
    assert with_epc.sgx_epc and "sgx" in with_epc.features
    assert not without.sgx_epc and "sgx" not in without.features


def test_maximum_and_a_bare_cpu_element_read_like_libvirt_writes_them() -> None:
    maximum = requirement("<cpu mode='maximum'/>", MILAN)
    passthrough = requirement("<cpu mode='host-passthrough'/>", MILAN)
    assert maximum.features == passthrough.features
    bare = requirement("<cpu><model>EPYC-Rome</model></cpu>", root="cpu")
    assert bare.vendor == "AuthenticAMD" and "clwb" in bare.features


def test_msr_and_paravirtual_names_are_accepted_but_never_decide() -> None:
    cpu = custom(
        "EPYC-Rome", ("require", "mds-no"), ("require", "vmx-ept"), ("require", "kvmclock")
    )
    parsed = parse_domain_cpu(f"<domain>{cpu}</domain>")
    assert parsed.kept_aside == ("kvmclock", "mds-no", "vmx-ept")
    assert requirement(cpu).features == requirement(custom("EPYC-Rome")).features


@pytest.mark.parametrize(
    ("cpu", "named"),
    [
        ("<cpu mode='host-copy'/>", "host-copy"),
        ("<cpu><model>EPYC-Rome</model><feature policy='maybe' name='avx'/></cpu>", "maybe"),
        ("<cpu><model>EPYC-Rome</model><feature name='psfd'/></cpu>", "amd_psfd"),
        ("<cpu><model>EPYC-Rome</model><vendor>Cyrix</vendor></cpu>", "Cyrix"),
        ("<cpu><maxphysaddr mode='emulate' bits='99'/></cpu>", "99"),
    ],
)
def test_what_libvirt_would_not_accept_is_named(cpu: str, named: str) -> None:
    with pytest.raises(LibvirtCpuError, match=named):
        parse_domain_cpu(f"<domain>{cpu}</domain>", "vm.xml")


# --- QEMU is the reference for custom CPUs ------------------------------------------------

QEMU_CASES = [
    ("EPYC-Milan", [("disable", "pku"), ("disable", "pclmuldq"), ("disable", "lahf_lm"),
                    ("forbid", "ibpb"), ("require", "x2apic"), ("force", "tsc_adjust")]),
    ("Skylake-Server-v4", [("require", "avx512vnni"), ("forbid", "hle"), ("forbid", "rtm"),
                           ("disable", "sse4.2"), ("require", "tsc-deadline")]),
    ("Cascadelake-Server", [("force", "stibp"), ("require", "ssbd"), ("disable", "avx512vnni"),
                            ("disable", "cmp_legacy"), ("require", "mds-no")]),
]  # fmt: skip


@pytest.mark.parametrize(("model", "features"), QEMU_CASES, ids=[m for m, _ in QEMU_CASES])
def test_custom_cpu_features_are_what_qemu_gives_the_guest(
    model: str, features: list[tuple[str, str]]
) -> None:
    """QEMU applies the same libvirt spellings to the model (query-cpu-model-expansion, static):
    every guest-visible feature it ends with is in the requirement, and nothing else."""
    from cpucompat.coordinator.domain.libvirt_cpu import map_feature
    from cpucompat.coordinator.domain.requirement import decides
    from cpucompat.coordinator.qemu_qmp import Qmp, qemu_binary

    if qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
    props = {name: policy in ("require", "force") for policy, name in features}
    with Qmp(["-machine", "none", "-accel", "tcg"]) as qmp:
        expansion = qmp.command(
            "query-cpu-model-expansion", type="static", model={"name": model, "props": props}
        )
    qemu: set[str] = set()
    for name, value in expansion["model"]["props"].items():
        if value is True:
            kind, mapped = map_feature(name)
            if kind == "feature" and decides(mapped):
                qemu.add(mapped)
    req = requirement(custom(model, *features))
    assert req.features | req.sgx_features == qemu


def test_a_schema_4_database_keeps_its_vms_and_gains_the_definition_column(
    tmp_path: Path,
) -> None:
    import sqlite3

    from cpucompat.coordinator.storage.sqlite import MIGRATIONS
    from cpucompat.coordinator.store import Store

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for migration in MIGRATIONS[:4]:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO vms (name, cluster, mode, boot_host, baseline, requirement, "
            "registered_at, booted_at, current_host) VALUES "
            "('web-1', 'prod', 'baseline', NULL, 'model:qemu/EPYC-Rome', '{}', 1.0, 1.0, NULL)"
        )
        conn.execute("PRAGMA user_version = 4")
    store = Store(path)
    try:
        with store.reading() as db:
            row = db.execute("SELECT name, baseline, cpu_definition FROM vms").fetchone()
        assert tuple(row) == ("web-1", "model:qemu/EPYC-Rome", None)
        assert store.schema_version() >= 5  # cpu_definition arrived in version 5
    finally:
        store.close()


# --- <clock><timer name='tsc' frequency='HZ'/>: a fixed TSC rate -----------------------------


FIXED_TSC = FIXTURES / "libvirt" / "skylake-fixed-tsc.xml"  # 3.0 GHz, Skylake-Server, invtsc


def test_a_fixed_tsc_rate_restores_only_where_the_rate_matches_or_scales() -> None:
    # Skylake Xeon's TSC runs at 3.0 GHz (CPUID 0x15): the same rate, no scaling needed.
    rc, doc = check(FIXED_TSC, SKYLAKE_SP)
    assert rc == 0 and doc["compatible"], doc
    # Sapphire Rapids runs at 2.592 GHz and CPUID cannot tell whether it scales a guest's TSC.
    rc, doc = check(FIXED_TSC, SAPPHIRE_RAPIDS)
    assert rc == 3 and codes(doc) == ["TSC_FREQUENCY_DIFFERS"]
    reason = doc["reasons"][0]
    assert "3000000000 Hz" in reason["detail"] and "2592000000 Hz" in reason["detail"]
    assert "fixed" in reason["detail"]
    assert reason["data"]["required_hz"] == 3_000_000_000 and reason["data"]["tsc_fixed"] is True
    human = run_cli("check", f"libvirt:{FIXED_TSC}", f"dump:{shared_dump(SAPPHIRE_RAPIDS)}")
    assert human.returncode == 3 and "2592000000 Hz" in human.stdout


def test_the_timer_alone_pins_the_rate_without_invtsc(tmp_path: Path) -> None:
    clock = "<clock offset='utc'><timer name='tsc' frequency='{hz}'/></clock>"
    model = "<cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Server</model></cpu>"
    plain = domain(tmp_path, model, "plain.xml")
    assert check(plain, SAPPHIRE_RAPIDS)[0] == 0  # no fixed rate: the target's own is used
    fixed = domain(tmp_path, model + clock.format(hz=3_000_000_000), "fixed.xml")
    rc, doc = check(fixed, SAPPHIRE_RAPIDS)
    assert rc == 3 and codes(doc) == ["TSC_FREQUENCY_DIFFERS"]
    # Within KVM's 250 ppm of the host's rate KVM needs no scaling (kvm_set_tsc_khz).
    near = domain(tmp_path, model + clock.format(hz=2_592_500_000), "near.xml")
    assert check(near, SAPPHIRE_RAPIDS)[0] == 0


def test_a_target_that_scales_the_tsc_takes_any_fixed_rate(tmp_path: Path) -> None:
    rome = (
        "<cpu mode='custom' match='exact'><model fallback='forbid'>EPYC-Rome</model></cpu>"
        "<clock offset='utc'><timer name='tsc' frequency='2250000000'/></clock>"
    )
    # Milan's CPUID states TSC rate control (0x8000000A EDX[4] TscRateMsr): KVM scales.
    rc, doc = check(domain(tmp_path, rome), MILAN)
    assert rc == 0 and doc["compatible"], doc


@pytest.mark.parametrize("frequency", ["fast", "-1", "0", "2.4e9", ""])
def test_a_tsc_timer_frequency_that_is_not_hz_is_refused(tmp_path: Path, frequency: str) -> None:
    xml = domain(
        tmp_path,
        "<cpu mode='custom'><model>EPYC-Rome</model></cpu>"
        f"<clock offset='utc'><timer name='tsc' frequency='{frequency}'/></clock>",
    )
    out = run_cli("check", f"libvirt:{xml}", f"dump:{shared_dump(MILAN)}")
    assert out.returncode == 2 and out.stdout == ""
    assert "frequency" in out.stderr and len(out.stderr.strip().splitlines()) == 1
