"""A VM's action names at most 20 refusing hosts, the first by host id, and counts all;
the action itself is decided from every host.

Members are views of real processors (the project's fixtures: an Intel requirement is
refused by every AMD host, for the vendor), given in an order that is not the hosts'.
"""

from __future__ import annotations

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.domain.policy import OfflineAction
from cpucompat.coordinator.domain.sides import requirement_of, target_of
from cpucompat.coordinator.domain.vm_action import (
    REFUSING_HOSTS_LISTED,
    Member,
    listed,
    vm_action,
)
from tests.support.paths import PROCESSORS

INTEL = decode(load_dump(PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"))
AMD = decode(load_dump(PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"))


def members(amd: int, intel: int) -> list[Member]:
    """``amd`` AMD hosts and ``intel`` Intel hosts, listed in reverse host id order."""
    hosts = [(f"amd-{n:02d}", AMD) for n in range(amd)]
    hosts += [(f"intel-{n:02d}", INTEL) for n in range(intel)]
    return [
        Member(name, online=True, maintenance=False, view=target_of(profile, name))
        for name, profile in sorted(hosts, reverse=True)
    ]


def test_an_action_names_the_first_20_refusing_hosts_by_id_and_counts_them_all() -> None:
    requirement = requirement_of(INTEL, "intel-00")
    action = vm_action("db", "prod", requirement, "intel-00", members(27, 3))
    assert action.action == OfflineAction.SHUTDOWN
    amd = [f"amd-{n:02d}" for n in range(27)]
    assert action.refusing_hosts == tuple(amd[:REFUSING_HOSTS_LISTED])
    assert action.refusing_total == 27
    assert action.reason.startswith(f"refused by {', '.join(amd[:20])}, \u2026 and 7 more: ")
    assert "amd-20" not in action.reason and "\u2026 and 24 more" in action.reason  # 3 reasons
    doc = action.to_json()
    assert (doc["refusing_hosts"], doc["refusing_hosts_total"]) == (amd[:20], 27)


def test_fewer_refusing_hosts_than_listed_are_all_named_as_before() -> None:
    requirement = requirement_of(AMD, "amd-00")
    few = vm_action("web", "prod", requirement, "amd-00", members(3, 1))
    assert few.action == OfflineAction.SHUTDOWN
    assert few.refusing_hosts == ("intel-00",) and few.refusing_total == 1
    assert few.reason.startswith("refused by intel-00: intel-00: ")
    none = vm_action("web", "prod", requirement, "amd-00", members(3, 0))
    assert none.action == OfflineAction.SAVE
    assert none.refusing_hosts == () and none.refusing_total == 0


def test_listed_names_say_how_many_more() -> None:
    assert listed(["a", "b"], 2) == "a, b"
    assert listed(["a", "b"], 5) == "a, b, \u2026 and 3 more"
    assert listed([], 0) == ""
