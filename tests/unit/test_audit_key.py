"""A cached audit's key changes with everything the audit depends on.

Equal keys share one computed audit (`Region.AUDIT`), so a member whose profile
version, status, replayed flag, maintenance or cluster differs, a member more or less,
another order, another dump content under the same name, other rules or another
cluster must each give another key; the same inputs always give the same key.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.audit_key import InputState, audit_key, member_state
from cpucompat.coordinator.domain.hosts import HostRecord, HostStatus
from cpucompat.coordinator.domain.kvm_offerable import Hypervisor
from tests.support.paths import DEV_DUMP

PROFILE = decode(load_dump(DEV_DUMP))


def record(host_id: str, version: int) -> HostRecord:
    return HostRecord(
        host_id=host_id,
        cluster="c",
        agent_address="",
        status=HostStatus.ONLINE,
        replayed=False,
        fingerprint=PROFILE.fingerprint,
        first_seen=0.0,
        last_seen=0.0,
        heartbeat_interval=30.0,
        profile_version=version,
        profile=PROFILE,
    )


MEMBERS = [record("a", 1), record("b", 2)]


def key(members: list[HostRecord], *extra: InputState, **kw: object) -> object:
    states: list[InputState] = [("host", *member_state(r)) for r in members]
    cluster = kw.get("cluster", "c")
    rules = kw.get("rules", Hypervisor.GENERIC)
    return audit_key(cluster, rules, [*states, *extra])  # type: ignore[arg-type]


def test_the_same_inputs_give_the_same_key_even_from_other_records() -> None:
    again = [replace(r, last_seen=99.0, agent_address="x:1") for r in MEMBERS]  # a heartbeat
    assert key(MEMBERS) == key(again)
    assert hash(key(MEMBERS)) == hash(key(again))


@pytest.mark.parametrize(
    "changed",
    [
        {"profile_version": 3},
        {"status": HostStatus.STALE},
        {"status": HostStatus.OFFLINE},
        {"replayed": True},
        {"maintenance": "on"},
        {"cluster": "d"},
        {"host_id": "b2"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_member_that_changed_gives_another_key(changed: dict[str, object]) -> None:
    assert key(MEMBERS) != key([MEMBERS[0], replace(MEMBERS[1], **changed)])  # type: ignore[arg-type]


def test_members_joining_leaving_or_reordered_give_another_key() -> None:
    assert key(MEMBERS) != key(MEMBERS[:1])
    assert key(MEMBERS) != key([*MEMBERS, record("c", 3)])
    assert key(MEMBERS) != key(MEMBERS[::-1])


def test_rules_cluster_and_extra_hosts_are_in_the_key() -> None:
    assert key(MEMBERS) != key(MEMBERS, rules=Hypervisor.KVM)
    assert key(MEMBERS) != key(MEMBERS, cluster=None)
    dump = ("dump", "dump:new.txt", "1" * 64)
    assert key(MEMBERS, dump) == key(MEMBERS, dump)
    assert key(MEMBERS, dump) != key(MEMBERS, ("dump", "dump:new.txt", "2" * 64))
    assert key(MEMBERS, ("model", "level:x86-64-v2", "GenuineIntel")) != key(
        MEMBERS, ("model", "level:x86-64-v2", "AuthenticAMD")
    )
