"""One error path (issue 11, item 3): the hierarchy's statuses, INTERNAL for bugs, one access table.

Real in-process coordinators on loopback; a failure is injected by replacing one domain
method of the running coordinator. The CLI runs as the real `cpucompat` process.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cpucompat.agent.dumps.errors import DumpError
from cpucompat.agent.errors import CATEGORIES, CpucompatError, exit_for_status
from cpucompat.agent.tls import TlsFiles
from cpucompat.coordinator.service.access import ACCESS, SERVICES, Caller
from cpucompat.coordinator.store import StorageFault
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.certs import TestCA
from tests.support.daemons import run_cli
from tests.support.hostile import report
from tests.support.inprocess import Running

LOGGER = "cpucompat.coordinator"
ERROR_MODULES = (
    "cpucompat.agent.cli.common",  # CliError
    "cpucompat.agent.cpuid_exec",
    "cpucompat.agent.live",
    "cpucompat.coordinator.server",  # every coordinator module's errors
)
for _module in ERROR_MODULES:
    importlib.import_module(_module)


def _subclasses(cls: type[CpucompatError]) -> Iterator[type[CpucompatError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _instance(cls: type[CpucompatError]) -> CpucompatError:
    """One error of ``cls`` whose message says which it is."""
    if issubclass(cls, DumpError):
        return cls("host.txt", f"{cls.__name__} here, fix it", 3)
    return cls(f"{cls.__name__} here, fix it")


PROJECT_ERRORS = sorted(set(_subclasses(CpucompatError)), key=lambda c: c.__qualname__)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    coordinator = Running(tmp_path)
    yield coordinator
    coordinator.close()


def _fail_with(running: Running, exc: BaseException) -> None:
    """Every host listing (ListHosts, `cpucompat hosts`) raises ``exc`` from the domain."""

    def hosts(*args: Any, **kwargs: Any) -> Any:
        raise exc

    running.coordinator.registry.hosts = hosts  # type: ignore[method-assign]


def test_hierarchy_holds_every_project_error() -> None:
    names = {cls.__name__ for cls in PROJECT_ERRORS}
    for expected in (
        "InvalidReportError",
        "RefusedError",
        "UnknownHostError",
        "LimitError",
        "RateLimitedError",
        "NotAdmittedError",
        "PolicyRefusedError",
        "RawDataError",
        "DumpError",
        "StampError",
        "BaselineError",
        "StorageFault",
        "CliError",
    ):
        assert expected in names
    # built-in bases kept: callers that caught ValueError or LookupError still do
    from cpucompat.agent.raw import RawDataError
    from cpucompat.coordinator.registry import UnknownHostError

    assert issubclass(RawDataError, ValueError) and issubclass(UnknownHostError, LookupError)


@pytest.mark.parametrize("cls", PROJECT_ERRORS, ids=lambda c: c.__name__)
def test_each_project_error_answers_its_own_status(
    running: Running, cls: type[CpucompatError]
) -> None:
    error = _instance(cls)
    _fail_with(running, error)
    with pytest.raises(grpc.RpcError) as err:
        running.query.ListHosts(pb.ListHostsRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode[error.grpc_status]
    assert err.value.details() == str(error).splitlines()[0]


def test_a_full_disk_is_resource_exhausted_and_one_log_line(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    _fail_with(running, StorageFault("the coordinator's database c.db failed: disk full", True))
    with caplog.at_level(logging.ERROR, logger=LOGGER), pytest.raises(grpc.RpcError) as err:
        running.query.ListHosts(pb.ListHostsRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    lines = [r for r in caplog.records if r.name == LOGGER]
    assert [r.getMessage() for r in lines] == [
        "ListHosts failed: the coordinator's database c.db failed: disk full"
    ]
    assert lines[0].exc_info is None  # a fault, not a bug: no traceback


def test_a_bug_is_internal_with_its_traceback_logged(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """A KeyError from a bug was NOT_FOUND (and CLI exit 2) through a LookupError catch-all."""
    _fail_with(running, KeyError("secret-internal-key"))
    with caplog.at_level(logging.ERROR, logger=LOGGER), pytest.raises(grpc.RpcError) as err:
        running.query.ListHosts(pb.ListHostsRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "secret-internal-key" not in (err.value.details() or "")
    assert "ListHosts" in (err.value.details() or "")
    logged = [r for r in caplog.records if r.name == LOGGER and r.exc_info]
    assert len(logged) == 1
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is KeyError
    assert "Traceback" in caplog.text and "secret-internal-key" in caplog.text


def test_a_bug_in_a_streaming_rpc_is_internal(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    engine = running.coordinator.policies

    def broken(cluster: str) -> Any:
        raise KeyError(cluster)

    engine.get = broken  # type: ignore[method-assign]
    stub = pb_grpc.PolicyServiceStub(running.channel)
    with caplog.at_level(logging.ERROR, logger=LOGGER), pytest.raises(grpc.RpcError) as err:
        next(iter(stub.WatchPolicy(pb.WatchPolicyRequest(cluster="c"), timeout=10)))
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "Traceback" in caplog.text and "WatchPolicy" in caplog.text


def test_a_project_error_in_a_streaming_rpc_keeps_its_status(running: Running) -> None:
    stub = pb_grpc.PolicyServiceStub(running.channel)
    with pytest.raises(grpc.RpcError) as err:
        next(iter(stub.WatchPolicy(pb.WatchPolicyRequest(cluster=""), timeout=10)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs a cluster" in (err.value.details() or "")


# ---- the CLI: one exit-code map -------------------------------------------------------


@pytest.mark.parametrize("cls", CATEGORIES, ids=lambda c: c.__name__)
def test_cli_exit_code_follows_the_hierarchy(running: Running, cls: type[CpucompatError]) -> None:
    error = _instance(cls)
    _fail_with(running, error)
    result = run_cli("hosts", "--coordinator", running.address)
    assert result.returncode == cls.exit_code == exit_for_status(cls.grpc_status)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(error) in lines[0], result.stderr


def test_cli_a_coordinator_bug_is_exit_1_not_a_usage_error(running: Running) -> None:
    _fail_with(running, KeyError("h1"))
    result = run_cli("hosts", "--coordinator", running.address)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "cpucompat hosts: coordinator error INTERNAL: internal error in ListHosts; "
        "the coordinator's log has the details"
    ]


def test_cli_documented_exit_codes_for_representative_failures(
    running: Running, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.txt"
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not a CPUID dump\n")
    unknown = run_cli("host", "show", "nosuch", "--coordinator", running.address)
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr
    for args in (
        ("audit", f"dump:{missing}"),
        ("audit", f"dump:{bad}"),
        ("check", "model:zen3", "model:no-such-model"),
    ):
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    unreachable = run_cli("hosts", "--coordinator", "127.0.0.1:1")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


# ---- the access table ------------------------------------------------------------------


def _all_rpcs() -> dict[str, Any]:
    return {
        f"/{service.full_name}/{method.name}": method
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def test_every_rpc_has_exactly_one_access_rule() -> None:
    assert set(SERVICES) == {s.full_name for s in pb.DESCRIPTOR.services_by_name.values()}
    assert set(ACCESS) == set(_all_rpcs())


@pytest.fixture
def mutual_tls(tmp_path: Path) -> Iterator[tuple[Running, TestCA]]:
    ca = TestCA(tmp_path / "pki")
    cert, key = ca.issue("coordinator", ip=["127.0.0.1"])
    coordinator = Running(
        tmp_path,
        tls=TlsFiles(cert=str(cert), key=str(key), ca=str(ca.ca_path)),
        admins=("ops",),
        require_admission=False,  # the table alone decides here
    )
    yield coordinator, ca
    coordinator.close()


def _call(channel: grpc.Channel, path: str, method: Any, request: Any) -> grpc.StatusCode:
    response_type = getattr(pb, method.output_type.name)
    if method.server_streaming:
        stream = channel.unary_stream(path, request.SerializeToString, response_type.FromString)(
            request, timeout=10
        )
        try:
            next(iter(stream))
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
        finally:
            stream.cancel()
        return grpc.StatusCode.OK
    try:
        channel.unary_unary(path, request.SerializeToString, response_type.FromString)(
            request, timeout=10
        )
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_the_table_is_enforced_on_every_rpc(mutual_tls: tuple[Running, TestCA]) -> None:
    """Host h1's certificate: its own host's calls and member calls pass, the rest refused."""
    running, ca = mutual_tls
    address = running.address
    cert, key = ca.issue("h1")
    admin_cert, admin_key = ca.issue("ops")

    def channel(cert: Path, key: Path) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(
            ca.ca_path.read_bytes(), key.read_bytes(), cert.read_bytes()
        )
        return grpc.secure_channel(address, credentials)

    host, admin = channel(cert, key), channel(admin_cert, admin_key)
    denied = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
    try:
        for path, method in _all_rpcs().items():
            rule = ACCESS[path]
            request_type = getattr(pb, method.input_type.name)
            fields = request_type.DESCRIPTOR.fields_by_name
            own = request_type(host_id="h1") if "host_id" in fields else request_type()
            other = request_type(host_id="h2") if "host_id" in fields else request_type()
            as_host = _call(host, path, method, own)
            as_admin = _call(admin, path, method, other)
            if rule.caller is Caller.ADMIN:
                assert as_host == grpc.StatusCode.PERMISSION_DENIED, path
                assert as_admin not in denied, path
            elif rule.caller is Caller.HOST:
                assert as_host not in denied, path
                assert as_admin == grpc.StatusCode.PERMISSION_DENIED, path  # not host h2
                assert _call(host, path, method, other) == grpc.StatusCode.PERMISSION_DENIED
            else:
                assert as_host not in denied and as_admin not in denied, path
    finally:
        host.close()
        admin.close()


def test_a_spoofed_report_stores_nothing(mutual_tls: tuple[Running, TestCA]) -> None:
    running, ca = mutual_tls
    cert, key = ca.issue("h1")
    credentials = grpc.ssl_channel_credentials(
        ca.ca_path.read_bytes(), key.read_bytes(), cert.read_bytes()
    )
    with grpc.secure_channel(running.address, credentials) as channel:
        stub = pb_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.ReportProfile(report("h2"), timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not report for host 'h2'" in (err.value.details() or "")
    assert running.stored() == (0, 0, 0)
