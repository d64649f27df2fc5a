"""The wire contract (protos/cpucompat/v1): generated code is current, the
protos follow the buf style guide and document every element, and the
generated modules import and work over a real gRPC channel."""

from __future__ import annotations

import difflib
import importlib.metadata
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from tests.support.paths import PROJECT_ROOT as ROOT

PROTOS = ROOT / "protos"
PKG_DIR = PROTOS / "cpucompat" / "v1"
GENERATE = PROTOS / "generate.py"
PINNED_GRPC_TOOLS = "1.85.1"
PACKAGE = "cpucompat.v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
REGENERATE = (
    f"regenerate with `pip install grpcio-tools=={PINNED_GRPC_TOOLS} && "
    "python protos/generate.py` from the repository root, and commit the result"
)

# Field numbers inside descriptor.proto, used to address SourceCodeInfo locations.
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE, FILE_EXTENSION = 4, 5, 6, 7
MSG_FIELD, MSG_NESTED, MSG_ENUM, MSG_EXTENSION, MSG_ONEOF = 2, 3, 4, 6, 8
ENUM_VALUE = 2
SERVICE_METHOD = 2

TIME_FIELD_NAMES = {"time", "since", "last_seen", "first_seen"}
"""Besides names ending in `_at`, the fields that hold a point in time."""


def _grpc_tools():
    return pytest.importorskip(
        "grpc_tools",
        reason=f"grpcio-tools is not installed (dev extra pins grpcio-tools=={PINNED_GRPC_TOOLS})",
    )


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


# --------------------------------------------------------------------------- generator


def test_grpc_tools_is_the_pinned_generator() -> None:
    _grpc_tools()
    from grpc_tools import grpc_version  # type: ignore[import-untyped]

    assert grpc_version.VERSION == PINNED_GRPC_TOOLS, (
        f"grpcio-tools {grpc_version.VERSION} is installed but the contract is generated with "
        f"{PINNED_GRPC_TOOLS}: pip install grpcio-tools=={PINNED_GRPC_TOOLS}"
    )
    assert importlib.metadata.version("grpcio-tools") == PINNED_GRPC_TOOLS


def test_committed_generated_code_is_current(tmp_path: Path) -> None:
    _grpc_tools()
    out = tmp_path / "gen"
    result = subprocess.run(
        [sys.executable, str(GENERATE), "--out", str(out)],
        cwd=tmp_path,  # the script must not depend on the working directory
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"protos/generate.py failed:\n{result.stderr}"

    fresh_dir = out / "cpucompat" / "v1"
    fresh = {p.name for p in fresh_dir.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}
    committed = {p.name for p in PKG_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}
    assert fresh, "the generator wrote nothing"
    assert committed == fresh, (
        f"generated files missing from protos/cpucompat/v1: {sorted(fresh - committed)}; "
        f"stale generated files: {sorted(committed - fresh)}; {REGENERATE}"
    )
    stale = []
    for name in sorted(fresh):
        new, old = (fresh_dir / name).read_bytes(), (PKG_DIR / name).read_bytes()
        if new != old:
            diff = difflib.unified_diff(
                old.decode(errors="replace").splitlines(),
                new.decode(errors="replace").splitlines(),
                f"committed/{name}",
                f"generated/{name}",
                lineterm="",
                n=1,
            )
            stale.append(f"{name}:\n" + "\n".join(line[:160] for line in list(diff)[:20]))
    assert not stale, (
        "committed generated code differs from the .proto files; "
        + REGENERATE
        + "\n\n"
        + "\n\n".join(stale)
    )


def test_every_proto_has_its_generated_modules() -> None:
    """Each .proto has its three modules where package-dir and the ruff exclusion expect them."""
    for proto in sorted(PKG_DIR.glob("*.proto")):
        stem = proto.stem
        for suffix in GENERATED_SUFFIXES:
            assert (PKG_DIR / f"{stem}{suffix}").is_file(), f"{stem}{suffix} missing; {REGENERATE}"
    assert (PKG_DIR / "__init__.py").is_file()
    assert (PKG_DIR / "py.typed").is_file()


# --------------------------------------------------------------------------- descriptors


@pytest.fixture(scope="module")
def descriptor_set(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    _grpc_tools()
    out = tmp_path_factory.mktemp("descriptors") / "contract.pb"
    protos = sorted(str(p.relative_to(ROOT)) for p in PKG_DIR.glob("*.proto"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",  # as __main__ it adds the well-known types' include path
            "-I",
            "protos",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *protos,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"protoc failed:\n{result.stderr}"
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    assert fds.file, "protoc produced an empty descriptor set"
    return fds


Element = tuple[str, str, tuple[int, ...]]
"""(kind, full name, SourceCodeInfo path) of one documentable element."""


def _message_elements(
    msg: descriptor_pb2.DescriptorProto, prefix: str, path: tuple[int, ...]
) -> Iterator[Element]:
    name = f"{prefix}.{msg.name}"
    yield "message", name, path
    synthetic_oneofs = {f.oneof_index for f in msg.field if f.proto3_optional}
    for i, field in enumerate(msg.field):
        yield "field", f"{name}.{field.name}", (*path, MSG_FIELD, i)
    for i, oneof in enumerate(msg.oneof_decl):
        if i not in synthetic_oneofs:
            yield "oneof", f"{name}.{oneof.name}", (*path, MSG_ONEOF, i)
    for i, ext in enumerate(msg.extension):
        yield "extension", f"{name}.{ext.name}", (*path, MSG_EXTENSION, i)
    for i, enum in enumerate(msg.enum_type):
        yield from _enum_elements(enum, name, (*path, MSG_ENUM, i))
    for i, nested in enumerate(msg.nested_type):
        if not nested.options.map_entry:  # map<k, v> entries are synthesized by protoc
            yield from _message_elements(nested, name, (*path, MSG_NESTED, i))


def _enum_elements(
    enum: descriptor_pb2.EnumDescriptorProto, prefix: str, path: tuple[int, ...]
) -> Iterator[Element]:
    name = f"{prefix}.{enum.name}"
    yield "enum", name, path
    for i, value in enumerate(enum.value):
        yield "enum value", f"{name}.{value.name}", (*path, ENUM_VALUE, i)


def _file_elements(f: descriptor_pb2.FileDescriptorProto) -> Iterator[Element]:
    for i, service in enumerate(f.service):
        name = f"{f.package}.{service.name}"
        yield "service", name, (FILE_SERVICE, i)
        for j, method in enumerate(service.method):
            yield "rpc", f"{name}.{method.name}", (FILE_SERVICE, i, SERVICE_METHOD, j)
    for i, msg in enumerate(f.message_type):
        yield from _message_elements(msg, f.package, (FILE_MESSAGE, i))
    for i, enum in enumerate(f.enum_type):
        yield from _enum_elements(enum, f.package, (FILE_ENUM, i))
    for i, ext in enumerate(f.extension):
        yield "extension", f"{f.package}.{ext.name}", (FILE_EXTENSION, i)


def _all_messages(
    fds: descriptor_pb2.FileDescriptorSet,
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    def walk(msg: descriptor_pb2.DescriptorProto, prefix: str):
        name = f"{prefix}.{msg.name}"
        yield name, msg
        for nested in msg.nested_type:
            if not nested.options.map_entry:
                yield from walk(nested, name)

    for f in fds.file:
        for msg in f.message_type:
            yield from walk(msg, f.package)


def _all_enums(
    fds: descriptor_pb2.FileDescriptorSet,
) -> Iterator[tuple[str, descriptor_pb2.EnumDescriptorProto]]:
    for f in fds.file:
        for enum in f.enum_type:
            yield f"{f.package}.{enum.name}", enum
    for name, msg in _all_messages(fds):
        for enum in msg.enum_type:
            yield f"{name}.{enum.name}", enum


def test_files_follow_package_layout(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    names = {f.name for f in descriptor_set.file}
    assert names == {f"cpucompat/v1/{p.name}" for p in PKG_DIR.glob("*.proto")}
    for f in descriptor_set.file:
        assert f.package == PACKAGE, f"{f.name}: package {f.package!r}, expected {PACKAGE!r}"
        assert f.syntax == "proto3", f"{f.name}: syntax {f.syntax!r}"
        directory, _, base = f.name.rpartition("/")
        assert directory == PACKAGE.replace(".", "/"), f"{f.name} is not in cpucompat/v1"
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*\.proto", base), (
            f"{f.name}: file names are lower_snake_case"
        )


def test_every_element_has_a_leading_comment(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    missing = []
    count = 0
    for f in descriptor_set.file:
        comments = {
            tuple(loc.path): loc.leading_comments.strip() for loc in f.source_code_info.location
        }
        for kind, name, path in _file_elements(f):
            count += 1
            if not comments.get(path):
                missing.append(f"{f.name}: {kind} {name}")
    assert count > 100, f"only {count} elements found: is the source info missing?"
    assert not missing, "elements without a leading comment:\n  " + "\n  ".join(missing)


def test_enums_have_unspecified_zero_and_prefixed_values(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    problems = []
    enums = list(_all_enums(descriptor_set))
    assert enums
    for name, enum in enums:
        prefix = _upper_snake(enum.name) + "_"
        zero = [v.name for v in enum.value if v.number == 0]
        if zero != [f"{prefix}UNSPECIFIED"] or enum.value[0].number != 0:
            problems.append(f"{name}: first value must be {prefix}UNSPECIFIED = 0, got {zero}")
        for value in enum.value:
            if not value.name.startswith(prefix):
                problems.append(f"{name}.{value.name}: values are prefixed with {prefix}")
            if not re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", value.name):
                problems.append(f"{name}.{value.name}: values are UPPER_SNAKE_CASE")
    assert not problems, "\n".join(problems)


def test_rpcs_have_their_own_request_and_response(
    descriptor_set: descriptor_pb2.FileDescriptorSet,
) -> None:
    problems = []
    used: dict[str, str] = {}
    rpc_count = 0
    for f in descriptor_set.file:
        for service in f.service:
            if not service.name.endswith("Service"):
                problems.append(f"service {service.name}: names end with 'Service'")
            for method in service.method:
                rpc_count += 1
                rpc = f"{service.name}.{method.name}"
                want_in = f".{PACKAGE}.{method.name}Request"
                want_out = f".{PACKAGE}.{method.name}Response"
                if method.input_type != want_in:
                    problems.append(f"{rpc}: request is {method.input_type}, expected {want_in}")
                if method.output_type != want_out:
                    problems.append(f"{rpc}: response is {method.output_type}, expected {want_out}")
                for type_name in (method.input_type, method.output_type):
                    if type_name in used:
                        problems.append(f"{rpc}: {type_name} is also used by {used[type_name]}")
                    used[type_name] = rpc
    assert rpc_count > 0
    assert not problems, "\n".join(problems)


def test_names_follow_buf_case_rules(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    problems = []
    for name, msg in _all_messages(descriptor_set):
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", msg.name):
            problems.append(f"message {name}: PascalCase")
        for field in msg.field:
            if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", field.name):
                problems.append(f"{name}.{field.name}: fields are lower_snake_case")
    for f in descriptor_set.file:
        for service in f.service:
            for method in service.method:
                if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", method.name):
                    problems.append(f"rpc {service.name}.{method.name}: PascalCase")
    assert not problems, "\n".join(problems)


def test_times_are_timestamps(descriptor_set: descriptor_pb2.FileDescriptorSet) -> None:
    problems = []
    seen = 0
    for name, msg in _all_messages(descriptor_set):
        for field in msg.field:
            if field.name.endswith("_at") or field.name in TIME_FIELD_NAMES:
                seen += 1
                if field.type_name != ".google.protobuf.Timestamp":
                    problems.append(f"{name}.{field.name} is {field.type_name or field.type}")
    assert seen > 0
    assert not problems, "points in time are google.protobuf.Timestamp:\n" + "\n".join(problems)


def test_buf_lint_and_format_when_available() -> None:
    """buf itself (STANDARD + COMMENTS rules, protos/buf.yaml) agrees, where it is installed."""
    buf = shutil.which("buf")
    if buf is None:
        pytest.skip("buf is not on PATH (pip install buf-bin); the tests above check its rules")
    lint = subprocess.run(
        [buf, "lint", "protos"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, f"buf lint protos:\n{lint.stdout}{lint.stderr}"
    fmt = subprocess.run(
        [buf, "format", "--diff", "--exit-code", "protos"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, f"run `buf format -w protos`:\n{fmt.stdout}{fmt.stderr}"


# --------------------------------------------------------------------------- runtime


def test_generated_modules_import_as_cpucompat_v1() -> None:
    from cpucompat.v1 import (
        agent_service_pb2,
        agent_service_pb2_grpc,
        coordinator_service_pb2,
        coordinator_service_pb2_grpc,
        profile_pb2,
    )

    assert profile_pb2.DESCRIPTOR.package == PACKAGE
    assert set(agent_service_pb2.DESCRIPTOR.services_by_name) == {"AgentService"}
    assert set(coordinator_service_pb2.DESCRIPTOR.services_by_name) == {
        "AdmissionService",
        "BaselineService",
        "RegistryService",
        "QueryService",
        "DecisionService",
        "PolicyService",
        "VmService",
    }
    for module, services in (
        (agent_service_pb2_grpc, agent_service_pb2.DESCRIPTOR.services_by_name),
        (coordinator_service_pb2_grpc, coordinator_service_pb2.DESCRIPTOR.services_by_name),
    ):
        for service in services:
            assert hasattr(module, f"{service}Stub")
            assert hasattr(module, f"{service}Servicer")
            assert hasattr(module, f"add_{service}Servicer_to_server")


def test_messages_round_trip() -> None:
    from cpucompat.v1 import coordinator_service_pb2 as c
    from cpucompat.v1 import profile_pb2 as p

    raw = p.RawCapture(
        source="replay:cpuid-tool",
        origin="dump.txt",
        cpus=[
            p.LogicalCpuLeaves(
                cpu=0,
                leaves=[
                    p.CpuidLeaf(leaf=0, eax=0x1F, ebx=0x756E6547, ecx=0x6C65746E, edx=0x49656E69)
                ],
                xcr0=0xE7,
            ),
            p.LogicalCpuLeaves(cpu=1),
        ],
    )
    raw.captured_at.GetCurrentTime()
    request = c.ReportProfileRequest(host_id="h1", cluster="c1", raw=raw)
    back = c.ReportProfileRequest.FromString(request.SerializeToString())
    assert back == request
    assert back.raw.cpus[0].HasField("xcr0") and back.raw.cpus[0].xcr0 == 0xE7
    assert not back.raw.cpus[1].HasField("xcr0")

    ref = c.HostRef(model="level:x86-64-v3", vendor="GenuineIntel")
    assert ref.WhichOneof("ref") == "model"
    ref.dump.name = "new.json"
    assert ref.WhichOneof("ref") == "dump"

    xsave = p.Xsave(supported_mask=0x2FF)
    assert not xsave.HasField("enabled_mask")


def test_offline_action_maps_to_hyperv_numbers() -> None:
    from cpucompat.v1 import coordinator_service_pb2 as c

    hyperv = {"TURN_OFF": 0, "SAVE": 1, "SHUTDOWN": 2, "SHUTDOWN_FORCED": 3}
    seen = {}
    for value in c.OfflineAction.DESCRIPTOR.values:
        options = value.GetOptions()
        if value.number == 0:
            assert value.name == "OFFLINE_ACTION_UNSPECIFIED"
            assert not options.HasExtension(c.hyperv_offline_action)
            continue
        assert options.HasExtension(c.hyperv_offline_action), value.name
        seen[value.name.removeprefix("OFFLINE_ACTION_")] = options.Extensions[
            c.hyperv_offline_action
        ]
    assert seen == hyperv


def test_stubs_work_over_a_real_channel() -> None:
    grpc = pytest.importorskip("grpc")
    from cpucompat.v1 import agent_service_pb2 as a
    from cpucompat.v1 import agent_service_pb2_grpc as ag
    from cpucompat.v1 import coordinator_service_pb2 as c
    from cpucompat.v1 import coordinator_service_pb2_grpc as cg

    class Agent(ag.AgentServiceServicer):
        def GetProfile(self, request, context):
            response = a.GetProfileResponse(host_id="h1", cluster="c1")
            response.profile.vendor = "GenuineIntel"
            response.profile.x86_64_level = "x86-64-v3"
            return response

    class Policy(cg.PolicyServiceServicer):
        def WatchPolicy(self, request, context):
            for version in (1, 2):
                yield c.WatchPolicyResponse(
                    policy=c.ClusterPolicy(
                        cluster=request.cluster,
                        action=c.OFFLINE_ACTION_SAVE if version == 1 else c.OFFLINE_ACTION_SHUTDOWN,
                        version=version,
                    )
                )

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ag.add_AgentServiceServicer_to_server(Agent(), server)
    cg.add_PolicyServiceServicer_to_server(Policy(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            profile = ag.AgentServiceStub(channel).GetProfile(a.GetProfileRequest(), timeout=10)
            assert profile.profile.vendor == "GenuineIntel"
            assert profile.profile.x86_64_level == "x86-64-v3"

            updates = list(
                cg.PolicyServiceStub(channel).WatchPolicy(
                    c.WatchPolicyRequest(cluster="c1"), timeout=10
                )
            )
            assert [u.policy.version for u in updates] == [1, 2]
            assert updates[0].policy.action == c.OFFLINE_ACTION_SAVE

            with pytest.raises(grpc.RpcError) as err:
                cg.VmServiceStub(channel).ListVms(c.ListVmsRequest(), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(grace=None)
