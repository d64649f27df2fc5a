"""Probe speed against py-cpuinfo, measured in one run on this machine. Prints JSON.

Targets (2-core development machine): the full in-process probe (every
allowed logical CPU, every leaf, decoded) at least 100x faster than
`cpuinfo.get_cpu_info()`, and the whole `cpucompat probe --json` process
under 0.25 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

TARGET_RATIO = 100.0
TARGET_COMMAND_SECONDS = 0.25


def median_seconds(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30, help="probe repetitions")
    parser.add_argument("--cpuinfo-runs", type=int, default=5, help="py-cpuinfo repetitions (slow)")
    parser.add_argument("--command-runs", type=int, default=10, help="whole-command repetitions")
    args = parser.parse_args()

    import cpuinfo

    from cpucompat.agent.decode import decode
    from cpucompat.agent.live import probe

    decode(probe())  # warm: builds the CPUID routine and runs its trial once
    probe_s = median_seconds(lambda: decode(probe()), args.runs)
    cpuinfo_s = median_seconds(cpuinfo.get_cpu_info, args.cpuinfo_runs)
    command = [sys.executable, "-m", "cpucompat.agent.cli.main", "probe", "--json"]
    subprocess.run(command, check=True, capture_output=True)  # warm the page cache
    command_s = median_seconds(
        lambda: subprocess.run(command, check=True, capture_output=True), args.command_runs
    )
    ratio = cpuinfo_s / probe_s
    print(
        json.dumps(
            {
                "logical_cpus": len(probe().cpus),
                "probe_in_process_median_s": round(probe_s, 6),
                "py_cpuinfo_get_cpu_info_median_s": round(cpuinfo_s, 6),
                "speedup_vs_py_cpuinfo": round(ratio, 1),
                "speedup_target": TARGET_RATIO,
                "speedup_ok": ratio >= TARGET_RATIO,
                "probe_command_median_s": round(command_s, 4),
                "probe_command_target_s": TARGET_COMMAND_SECONDS,
                "probe_command_ok": command_s <= TARGET_COMMAND_SECONDS,
                "runs": {
                    "probe": args.runs,
                    "cpuinfo": args.cpuinfo_runs,
                    "command": args.command_runs,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
