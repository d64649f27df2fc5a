"""A fleet of real hosts in network namespaces: PostgreSQL, two coordinators, agents.

Two networks, so each fault cuts exactly one path (addresses from 198.18.0.0/15):

    front 198.18.0.0/24   agents .101-.1NN, coordinators .11 .12, the admin seat .2
    back  198.18.1.0/24   PostgreSQL .1, coordinators .11 .12

Every host is a namespace with its own veth (`tests.support.netns`); every daemon a real
process started with ``ip netns exec NS python -m ...``, under mutual TLS with
certificates that carry the hosts' 198.18 addresses. PostgreSQL listens on its back
address (trust for that network only) and on a unix socket in its folder, through which
this process reads the database for the assertions. Short TCP keepalives on both sides
(the URL's libpq options, the server's ``tcp_*`` settings) let a cut link end a session
in seconds instead of the kernel's default minutes.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.certs import TestCA
from tests.support.netns import Link, NetnsDaemon, Network
from tests.support.paths import DUMPS, PROCESSORS, SHARED_DUMPS
from tests.support.postgres import SKIP_REASON, SUPERUSER, PostgresServer, find_binaries

CLI = [sys.executable, "-m", "cpucompat.agent.cli.main"]
FRONT, BACK = "198.18.0", "198.18.1"
DB_ADDRESS = f"{BACK}.1"
ADMIN_ADDRESS = f"{FRONT}.2"
PG_PORT = 5432
COORDINATOR_PORT = 7443
AGENT_PORT = 7444
# libpq: give up on a silent server in seconds, not the kernel's minutes.
PG_CLIENT_OPTIONS = (
    "connect_timeout=3&keepalives=1&keepalives_idle=1&keepalives_interval=1"
    "&keepalives_count=3&tcp_user_timeout=2000"
)
PG_SERVER_OPTIONS = (
    "-c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 "
    "-c tcp_user_timeout=2000 -c max_connections=100 -c shared_buffers=16MB"
)

# Variants of one processor (the development machine's AMD EPYC KVM guest) recorded in
# different layouts: different files, mutually compatible, so their cluster is SAVE
# while every host is fresh.
STEADY_DUMPS = [
    PROCESSORS / "dev-amd-epyc-kvm.cpuid-r.txt",
    DUMPS / "aida-sections.txt",
    DUMPS / "aida-tab.txt",
    DUMPS / "aida-affmask.txt",
    DUMPS / "capture.json",
    DUMPS / "cpuid-r-comments-crlf-bom.txt",
    DUMPS / "cpuid-r-single.txt",
    DUMPS / "cpuid-r-two-cpus.txt",
]
STEADY_SHARED = ["cpuid-r-amd-epyc-kvm-guest.txt"]
# Different processors (mixed: their cluster is SHUTDOWN for its processors alone).
MIXED_DUMPS = [
    PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt",
    PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt",
    PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt",
    DUMPS / "spr-avx10_1-edited.txt",
    DUMPS / "spr-avx10_2-edited.txt",
    DUMPS / "libcpuid-single.txt",
    PROCESSORS / "dev-amd-epyc-kvm-guest-phys-40-edited.json",
]
# Small real dumps of the shared collection, used first when it is present.
MIXED_SHARED = [
    "amd-zen2-amd-ryzen-7-5700u-with-radeon-graphics.txt",
    "intel-x86-64-skylake-intel-core-i5-8265u-cpu.txt",
    "intel-x86-64-haswell-intel-core-i7-4750hq-cpu.txt",
    "intel-x86-64-sandy-bridge-intel-core-i5-2400-cpu.txt",
    "intel-x86-64-nehalem-intel-core-i5-cpu-650.txt",
    "amd-k10-amd-athlon-ii-x4-620-processor.txt",
]
ACK = re.compile(r"reported (\S+) to the coordinator \(fingerprint (\w+), version (\d+)\)")


def pick_dumps(shared_names: list[str], own: list[Path], count: int) -> list[Path]:
    """``count`` different dumps: the shared real ones when present, then the project's."""
    shared = [SHARED_DUMPS / n for n in shared_names if (SHARED_DUMPS / n).is_file()]
    pool = shared + own
    if count > len(pool):
        raise ValueError(f"only {len(pool)} different dumps for {count} agents")
    return pool[:count]


@dataclass
class Agent:
    """One agent host: its namespace, link, replayed dump (a copy it re-reads) and state."""

    name: str
    cluster: str
    link: Link
    dump: Path
    state_file: Path
    daemon: NetnsDaemon | None = None

    def state(self) -> dict:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def output(self) -> str:
        return self.daemon.output() if self.daemon else ""

    def switches_to(self, address: str) -> int:
        """How many times the agent logged moving on to the coordinator at ``address``."""
        return self.output().count(f"switching to {address}")

    def coordinator(self, listed: list[str]) -> str:
        """The coordinator the agent uses now (sticky: the last it moved on to)."""
        moves = re.findall(r"switching to (\S+)", self.output())
        return moves[-1] if moves else listed[0]

    def heard(self, action: str) -> int:
        """How many times the agent has heard its cluster's policy turn ``action``."""
        return self.output().count(f"cluster {self.cluster} policy {action} ")

    def acknowledged(self) -> list[tuple[str, str, int]]:
        """(host, fingerprint prefix, profile version) of every report the agent logged as
        answered by a coordinator."""
        return [(m[1], m[2], int(m[3])) for m in ACK.finditer(self.output())]


@dataclass
class Coordinator:
    name: str
    front: Link
    back: Link
    daemon: NetnsDaemon | None = None

    @property
    def address(self) -> str:
        return f"{self.front.address}:{COORDINATOR_PORT}"


@dataclass
class Fleet:
    """Build with `start`; ``close`` tears everything down (call it in a finally)."""

    folder: Path
    clusters: dict[str, list[Path]]  # cluster -> one dump per agent
    expected: dict[str, str]  # cluster -> its action while every host is fresh
    interval: float = 0.5
    coordinators: int = 2
    failover: bool = False  # agents given every coordinator (A,B) rather than one each
    net: Network | None = None
    pg: PostgresServer | None = None
    agents: list[Agent] = field(default_factory=list)
    coords: list[Coordinator] = field(default_factory=list)
    db_link: Link | None = None
    db_url: str = ""
    local_url: str = ""
    admin_ns: str = ""  # the admin seat: where `cli` runs
    timings: dict[str, float] = field(default_factory=dict)

    # ---- building -----------------------------------------------------------------------

    def start(self) -> None:
        began = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.net = Network(bridges=("front", "back"))
        db_ns = self.net.add_namespace("db")
        self.db_link = self.net.attach(db_ns, "back", "back", DB_ADDRESS)
        admin_ns = self.net.add_namespace("admin")
        self.net.attach(admin_ns, "front", "front", ADMIN_ADDRESS)
        self.admin_ns = admin_ns
        for i in range(self.coordinators):
            ns = self.net.add_namespace(f"c{i + 1}")
            front = self.net.attach(ns, "front", "front", f"{FRONT}.{11 + i}")
            back = self.net.attach(ns, "back", "back", f"{BACK}.{11 + i}")
            self.coords.append(Coordinator(f"coordinator-{chr(ord('a') + i)}", front, back))
        n = 0
        for cluster, dumps in self.clusters.items():
            for dump in dumps:
                n += 1
                name = f"{cluster}-{n:02d}"
                ns = self.net.add_namespace(f"a{n:02d}")
                link = self.net.attach(ns, "front", "front", f"{FRONT}.{100 + n}")
                copy = self.folder / f"{name}.dump"
                shutil.copyfile(dump, copy)
                state = self.folder / f"state-{name}.json"
                self.agents.append(Agent(name, cluster, link, copy, state))
        self.timings["network_s"] = time.monotonic() - began
        self._pki()
        began = time.monotonic()
        self._start_postgres(db_ns)
        self.timings["postgres_s"] = time.monotonic() - began
        began = time.monotonic()
        for c in self.coords:
            self.start_coordinator(c)
        self.timings["coordinators_s"] = time.monotonic() - began
        began = time.monotonic()
        self.start_agents(self.agents)
        self.timings["agents_s"] = time.monotonic() - began

    def _pki(self) -> None:
        self.ca = TestCA(self.folder / "pki")
        self.certs: dict[str, tuple[Path, Path]] = {}
        for c in self.coords:
            self.certs[c.name] = self.ca.issue(c.name, ip=[c.front.address])
        for a in self.agents:
            self.certs[a.name] = self.ca.issue(a.name, ip=[a.link.address])
        self.certs["ops"] = self.ca.issue("ops", ip=[ADMIN_ADDRESS])

    def tls(self, who: str) -> list[str]:
        cert, key = self.certs[who]
        return ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(self.ca.ca_path)]

    def _start_postgres(self, namespace: str) -> None:
        binaries = find_binaries()
        if binaries is None:
            pytest.skip(SKIP_REASON)
        folder = Path(tempfile.mkdtemp(prefix="cpucompat-fleet-pg-"))
        nobody = pwd.getpwnam("nobody")
        run_as = (nobody.pw_uid, nobody.pw_gid)
        os.chown(folder, *run_as)
        self.pg = PostgresServer(folder, binaries, run_as)
        drop = ["setpriv", f"--reuid={run_as[0]}", f"--regid={run_as[1]}", "--clear-groups"]
        data = folder / "data"
        _checked(
            [*drop, str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
             "--no-sync", "-E", "UTF8", "--locale=C"], cwd=folder,
        )  # fmt: skip
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all {SUPERUSER} {BACK}.0/24 trust\n")
        options = (
            f"-c listen_addresses='{DB_ADDRESS}' -c port={PG_PORT} "
            f"-c unix_socket_directories='{folder}' {PG_SERVER_OPTIONS}"
        )
        _checked(
            [*self.net_prefix(namespace), *drop, str(binaries / "pg_ctl"), "-D", str(data),
             "-l", str(folder / "server.log"), "-o", options, "-w", "-t", "120", "start"],
            cwd=folder,
        )  # fmt: skip
        self.pg.psql("CREATE DATABASE fleet")
        self.db_url = f"postgresql://{SUPERUSER}@{DB_ADDRESS}:{PG_PORT}/fleet?{PG_CLIENT_OPTIONS}"
        self.local_url = self.pg.url("fleet")

    def cut(self, link: Link) -> None:
        """Take a host's link down inside its namespace (a partition)."""
        assert self.net is not None
        self.net.set_link(link, up=False)

    def heal(self, link: Link) -> None:
        assert self.net is not None
        self.net.set_link(link, up=True)

    def leftovers(self) -> list[str]:
        """Namespaces of this fleet the system still lists (none once closed)."""
        return self.net.leftovers() if self.net is not None else []

    def net_prefix(self, namespace: str) -> list[str]:
        assert self.net is not None
        return self.net.exec_prefix(namespace)

    def start_coordinator(self, c: Coordinator) -> None:
        command = [
            *CLI, "coordinator", "--listen", c.address, "--db", self.db_url,
            "--allow-replayed", "--admin", "ops", "--no-require-admission", *self.tls(c.name),
        ]  # fmt: skip
        c.daemon = NetnsDaemon(c.front.namespace, command, self.folder / f"{c.name}.log")

    def coordinator_list(self, agent_index: int) -> str:
        if self.failover:
            order = self.coords[agent_index % 2 :] + self.coords[: agent_index % 2]
            return ",".join(c.address for c in order)
        return self.coords[agent_index % len(self.coords)].address

    def busiest(self) -> Coordinator:
        """The coordinator most agents use now."""
        using = [
            a.coordinator(self.coordinator_list(i).split(",")) for i, a in enumerate(self.agents)
        ]
        return max(self.coords, key=lambda c: using.count(c.address))

    def rotate_processors(self, cluster: str) -> None:
        """Each agent of ``cluster`` takes the next one's processor (a new profile version
        each, reported at once: the agent re-reads its dump at every probe)."""
        agents = self.in_cluster(cluster)
        dumps = [a.dump.read_bytes() for a in agents]
        for i, a in enumerate(agents):
            a.dump.write_bytes(dumps[(i + 1) % len(dumps)])

    def agent_command(self, a: Agent, coordinator: str) -> list[str]:
        return [
            *CLI, "agent", "--coordinator", coordinator, "--cluster", a.cluster,
            "--host-id", a.name, "--listen", f"{a.link.address}:{AGENT_PORT}",
            "--interval", str(self.interval), "--replay-dump", str(a.dump),
            "--state-file", str(a.state_file), "-v", *self.tls(a.name),
        ]  # fmt: skip

    def start_agents(self, agents: Iterable[Agent], coordinator: str | None = None) -> None:
        started = []
        for a in agents:  # all at once, then wait for each
            index = self.agents.index(a)
            a.daemon = NetnsDaemon(
                a.link.namespace,
                self.agent_command(a, coordinator or self.coordinator_list(index)),
                self.folder / f"{a.name}.log",
                timeout=None,
            )
            started.append(a.daemon)
        for daemon in started:
            daemon.wait_ready()

    def close(self) -> None:
        for daemon in [a.daemon for a in self.agents] + [c.daemon for c in self.coords]:
            if daemon is not None:
                daemon.kill()
        if self.pg is not None:
            self.pg.stop()
        if self.net is not None:
            self.net.close()
        if self.pg is not None:
            shutil.rmtree(self.pg.folder, ignore_errors=True)

    # ---- reading --------------------------------------------------------------------------

    def sql(self, query: str, *params: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.local_url, connect_timeout=10) as conn:
            return list(conn.execute(query.encode(), params).fetchall())

    def policy(self, cluster: str) -> tuple[str, int]:
        """The stored policy: (action name, version)."""
        rows = self.sql("SELECT action, version FROM policies WHERE cluster = %s", cluster)
        if not rows:
            return ("", 0)
        names = {0: "TURN_OFF", 1: "SAVE", 2: "SHUTDOWN", 3: "SHUTDOWN_FORCED"}
        return names[int(rows[0][0])], int(rows[0][1])

    def host_status(self) -> dict[str, str]:
        return {h: s for h, s in self.sql("SELECT host_id, status FROM hosts")}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `cpucompat` command from the admin seat (its own namespace, the ops certificate)."""
        return subprocess.run(
            [*self.net_prefix(self.admin_ns), *CLI, *args, *self.tls("ops")],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip

    def lost_acknowledgements(self) -> list[tuple[str, str, int]]:
        """Reports an agent logged as acknowledged that the database does not hold."""
        stored = {
            int(version): (host, fingerprint)
            for version, host, fingerprint in self.sql(
                "SELECT id, host_id, fingerprint FROM profiles"
            )
        }
        lost = []
        for a in self.agents:
            for host, prefix, version in a.acknowledged():
                got = stored.get(version)
                if got is None or got[0] != host or not got[1].startswith(prefix):
                    lost.append((host, prefix, version))
        return lost

    def in_cluster(self, cluster: str) -> list[Agent]:
        return [a for a in self.agents if a.cluster == cluster]

    def last_event(self) -> int:
        return int(self.sql("SELECT coalesce(max(id), 0) FROM events")[0][0])

    def stale_events(self, since_id: int) -> list[str]:
        """Hosts marked stale (heard by no coordinator) since event ``since_id``."""
        rows = self.sql(
            "SELECT host_id FROM events WHERE id > %s AND message LIKE %s ORDER BY id",
            since_id,
            "%heartbeats missed%",
        )
        return [r[0] for r in rows]

    def all_online(self) -> bool:
        status = self.host_status()
        return len(status) == len(self.agents) and set(status.values()) == {"online"}

    def settled(self) -> bool:
        """Every host online, each cluster's stored policy as ``expected``, every agent's
        state file at its cluster's stored version."""
        if not self.all_online():
            return False
        for cluster, action in self.expected.items():
            stored, version = self.policy(cluster)
            if stored != action:
                return False
            for a in self.in_cluster(cluster):
                state = a.state()
                if state.get("policy_version") != version or state.get("action") != action:
                    return False
        return True

    def policy_via(self, index: int, cluster: str) -> dict:
        """`cpucompat policy show --json` from the admin seat through coordinator ``index``."""
        shown = self.cli(
            "policy", "show", "--cluster", cluster, "--coordinator",
            self.coords[index].address, "--json",
        )  # fmt: skip
        if shown.returncode not in (0, 3):
            raise RuntimeError(f"policy show failed: {shown.stderr}")
        return dict(json.loads(shown.stdout))


def _checked(command: list[str], cwd: Path) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, cwd=cwd
    )
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed: {done.stdout}{done.stderr}")


def poll(
    predicate: Callable[[], object], what: str, rounds: int = 600, pause: float = 0.2
) -> float:
    """Poll at most ``rounds`` times; seconds it took. The bound only ends a hung run."""
    began = time.monotonic()
    last: object = None
    for _ in range(rounds):
        last = predicate()
        if last:
            return time.monotonic() - began
        time.sleep(pause)
    raise AssertionError(f"gave up waiting for {what} after {rounds} polls (last {last!r})")
