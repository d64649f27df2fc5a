"""Decision speed on real processors: eligible-target search and cluster audits.

Prints one JSON document measured in this run: the median time to list the
eligible targets of a VM among 10,000 registered hosts, and the time to audit
10,000 and 100,000 hosts, each host drawn (round robin) from the real CPUID
dumps in ../shared/cpuid-dumps (or tests/fixtures when those are absent), with
the targets and whether each was met.

    python benchmarks/decisions.py [--dumps DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cpucompat.agent.dumps import load_dump_profile
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import RawDataError
from cpucompat.coordinator.domain.audit import HostInput, audit
from cpucompat.coordinator.domain.compat import TargetIndex, TargetView, eligible_targets
from cpucompat.coordinator.domain.requirement import Requirement

ROOT = Path(__file__).resolve().parents[1]
SHARED_DUMPS = Path(__file__).resolve().parents[2] / "shared" / "cpuid-dumps"
FIXTURE_DIRS = (ROOT / "tests" / "fixtures" / "processors", ROOT / "tests" / "fixtures" / "dumps")

ELIGIBLE_HOSTS = 10_000
ELIGIBLE_TARGET_S = 0.002
AUDIT_TARGETS_S = {10_000: 1.0, 100_000: 10.0}
SOURCE_DUMP = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"


def load_profiles(folders: Sequence[Path]) -> tuple[list[tuple[str, Profile]], list[str]]:
    """Decode every dump found; return the profiles and one note per file skipped."""
    profiles: list[tuple[str, Profile]] = []
    notes: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            notes.append(f"{folder}: not found, skipped")
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix not in (".txt", ".json"):
                continue
            if path.stem in ("README", "MANIFEST") or path.name.startswith("bad-"):
                continue
            try:
                profiles.append((path.name, load_dump_profile(path)))
            except (RawDataError, ValueError, OSError) as exc:
                notes.append(f"{path.name}: cannot be decoded ({exc}), skipped")
        if profiles:
            return profiles, notes
    return profiles, notes


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dumps", type=Path, help="folder of CPUID dumps (default: shared)")
    parser.add_argument("--repeat", type=int, default=201, help="eligible-target searches to time")
    args = parser.parse_args(argv)

    folders = [args.dumps] if args.dumps else [SHARED_DUMPS, *FIXTURE_DIRS]
    profiles, notes = load_profiles(folders)
    for note in notes:
        print(note, file=sys.stderr)
    if not profiles:
        print(
            f"no decodable CPUID dumps in {', '.join(map(str, folders))}; "
            "pass --dumps DIR with real dumps",
            file=sys.stderr,
        )
        return 2

    names = dict(profiles)
    source_name = SOURCE_DUMP if SOURCE_DUMP in names else profiles[0][0]
    requirement = Requirement.from_profile(names[source_name], "vm-source")

    hosts = [
        TargetView.from_profile(profiles[i % len(profiles)][1], f"host{i:05d}")
        for i in range(ELIGIBLE_HOSTS)
    ]
    eligible_targets(requirement, hosts)  # warm: views compiled as the coordinator keeps them
    samples = [timed(lambda: eligible_targets(requirement, hosts)) for _ in range(args.repeat)]
    found = len(eligible_targets(requirement, hosts))
    index = TargetIndex(hosts)
    index_samples = [timed(lambda: index.eligible(requirement)) for _ in range(args.repeat)]

    audits: dict[str, Any] = {}
    for count, limit in AUDIT_TARGETS_S.items():
        members = [HostInput(f"node{i:06d}", profiles[i % len(profiles)][1]) for i in range(count)]
        start = time.perf_counter()
        report = audit(members)
        audit_s = time.perf_counter() - start
        start = time.perf_counter()
        doc = report.to_json()
        json_s = time.perf_counter() - start
        total = audit_s + json_s
        audits[str(count)] = {
            "hosts": count,
            "distinct_profiles": len(doc["distinct_profiles"]),
            "audit_s": round(audit_s, 4),
            "to_json_s": round(json_s, 4),
            "total_s": round(total, 4),
            "target_s": limit,
            "pass": total <= limit,
            "offline_action": doc["offline_action"],
            "pairs_mode": doc["pairs_mode"],
        }

    median = statistics.median(samples)
    result = {
        "dumps": {"folder": str(folders[0]), "profiles": len(profiles), "skipped": notes},
        "eligible_targets": {
            "hosts": ELIGIBLE_HOSTS,
            "distinct_profiles": index.distinct,
            "requirement_from": source_name,
            "eligible": found,
            "repeat": args.repeat,
            "median_s": median,
            "p95_s": sorted(samples)[int(0.95 * (len(samples) - 1))],
            "median_with_prebuilt_index_s": statistics.median(index_samples),
            "target_s": ELIGIBLE_TARGET_S,
            "pass": median <= ELIGIBLE_TARGET_S,
        },
        "audit": audits,
        "pass": median <= ELIGIBLE_TARGET_S and all(a["pass"] for a in audits.values()),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
