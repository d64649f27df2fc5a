"""Follow the cluster's fail-over policy: state file and hook on every change.

The agent subscribes to WatchPolicy, resubscribes after coordinator
restarts, writes each policy atomically (temp file + rename, so readers
never see half a file) and runs the operator's hook when the action
changes (the cluster's, or the own action of a VM running on this host). A failing hook is logged and retried on the next change; it never
stops the agent.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from ..atomic_file import atomic_write
from ..coordinators import FailoverChannel
from ..wire import enum_name
from .metrics import AgentMetrics
from .state import Backoff

log = logging.getLogger("cpucompat.agent")

STATE_FORMAT = "cpucompat-policy"
HOOK_TIMEOUT = 60.0


def vm_action_document(action: pb.VmAction) -> dict[str, Any]:
    """One VM's own offline action, as the state file and the hook give it."""
    return {
        "vm": action.vm_name,
        "offline_action": enum_name(pb.OfflineAction, action.action),
        "hyperv_offline_action": action.hyperv_offline_action,
        "refusing_hosts": list(action.refusing_hosts),
        "refusing_hosts_total": max(action.refusing_hosts_total, len(action.refusing_hosts)),
        "reason": action.reason,
    }


def policy_document(
    policy: pb.ClusterPolicy, vm_actions: Sequence[pb.VmAction] = (), host_id: str = ""
) -> dict[str, Any]:
    """The state file's JSON: stable keys an operator's tooling can read."""
    return {
        "host_id": host_id,
        "vms": [vm_action_document(a) for a in vm_actions],
        "format": STATE_FORMAT,
        "version": 1,
        "cluster": policy.cluster,
        "action": enum_name(pb.OfflineAction, policy.action),
        "hyperv_offline_action": policy.hyperv_offline_action,
        "computed_action": enum_name(pb.OfflineAction, policy.computed_action),
        "pinned": policy.pinned_action != pb.OFFLINE_ACTION_UNSPECIFIED,
        "reason": policy.reason,
        "blocking_pairs": [f"{p.source}->{p.target}" for p in policy.blocking_pairs],
        "stale_hosts": list(policy.stale_hosts),
        # An older coordinator sends no total: it named every stale host.
        "stale_hosts_total": max(policy.stale_hosts_total, len(policy.stale_hosts)),
        "policy_version": policy.version,
        "updated_at": policy.updated_at.ToJsonString(),
    }


def write_state_file(path: Path, doc: dict[str, Any]) -> None:
    """The policy as JSON, replaced atomically; private to the agent's user as before."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", mode=0o600)


class PolicyWatcher:
    """One thread holding a WatchPolicy stream for the agent's cluster."""

    def __init__(
        self,
        channel: grpc.Channel,
        cluster: str,
        state_file: str | None,
        hook: str | None,
        host_id: str = "",
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.stub = pb_grpc.PolicyServiceStub(channel)
        if isinstance(channel, FailoverChannel):
            channel.on_switch(self._moved)
        self.metrics = metrics
        self.cluster = cluster
        self.host_id = host_id
        self.state_file = Path(state_file) if state_file else None
        self.hook = hook
        self.backoff = Backoff(base=0.2, cap=10.0)
        self._hooked: tuple[str, str] | None = None  # (cluster action, VM actions) last hooked
        self._hook_pending = True
        self._source: tuple[str | None, int] | None = None  # (coordinator, version) followed
        self._stop = threading.Event()
        self._call: Any = None
        self._last_refusal: tuple[str, str] | None = None
        # Called when the coordinator ends the watch with PERMISSION_DENIED (this host's
        # admission was revoked): the reporter checks at once instead of at its next interval.
        self.on_refused: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="policy-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()
        self._thread.join(timeout=5)

    def _moved(self, address: str) -> None:
        """The reporter (or this watch) moved to ``address``: a stream still open on another
        coordinator ends, and the watch resubscribes there (a hung coordinator's stream
        would otherwise hold the watch)."""
        call = self._call
        if (
            call is not None
            and getattr(call, "started", False)  # still choosing: it fails over itself
            and getattr(call, "address", address) != address
        ):
            log.info("policy watch follows the switch to coordinator %s", address)
            call.cancel()

    def _behind(self, policy: pb.ClusterPolicy) -> bool:
        """Whether a coordinator just switched to sends an older version than the state
        file holds (its mirror of the shared database lags by a moment): keep the newer
        one; the lagging coordinator sends the current version as soon as it has it. One
        coordinator's own versions are always taken (a database restored from a backup)."""
        address = getattr(self._call, "address", None)
        last, self._source = self._source, (address, policy.version)
        if last is None or address is None or last[0] in (None, address):
            return False
        if policy.version < last[1]:
            log.info(
                "coordinator %s sent policy version %d, older than version %d already "
                "followed; keeping it until that coordinator catches up",
                address,
                policy.version,
                last[1],
            )
            self._source = last
            return True
        return False

    def _apply(self, policy: pb.ClusterPolicy, vm_actions: Sequence[pb.VmAction] = ()) -> None:
        doc = policy_document(policy, vm_actions, self.host_id)
        if self.metrics is not None:
            self.metrics.policy(doc["action"], policy.version)
        if self.state_file is not None:
            write_state_file(self.state_file, doc)
        # The hook hears a change of the cluster's action or of any of this host's VMs'.
        vms = json.dumps({v["vm"]: v["offline_action"] for v in doc["vms"]}, sort_keys=True)
        changed = (doc["action"], vms) != self._hooked
        if self.hook and (changed or self._hook_pending):
            env = {
                **os.environ,
                "CPUCOMPAT_CLUSTER": policy.cluster,
                "CPUCOMPAT_ACTION": doc["action"],
                "CPUCOMPAT_VM_ACTIONS": vms,
                "CPUCOMPAT_HYPERV_OFFLINE_ACTION": str(policy.hyperv_offline_action),
                "CPUCOMPAT_REASON": policy.reason,
                "CPUCOMPAT_POLICY_VERSION": str(policy.version),
            }
            try:
                result = subprocess.run(
                    self.hook,
                    shell=True,
                    env=env,
                    timeout=HOOK_TIMEOUT,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                )
                if result.returncode != 0:
                    raise RuntimeError(f"exit {result.returncode}: {result.stderr.strip()[:200]}")
                self._hook_pending = False
            except Exception as exc:  # logged, retried on the next change
                log.error("policy hook failed (%s); will run again on the next change", exc)
                self._hook_pending = True
        self._hooked = (doc["action"], vms)
        log.info(
            "cluster %s policy %s (version %d): %s",
            policy.cluster,
            doc["action"],
            policy.version,
            policy.reason,
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._call = self.stub.WatchPolicy(
                    pb.WatchPolicyRequest(cluster=self.cluster, host_id=self.host_id)
                )
                for message in self._call:
                    self.backoff.reset()
                    self._last_refusal = None
                    if self._behind(message.policy):
                        continue
                    self._apply(message.policy, message.vm_actions)
                    if self._stop.is_set():
                        break
            except grpc.RpcError as exc:
                if self._stop.is_set():
                    break
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    log.info("policy watch interrupted (%s); resubscribing", exc.code().name)
                else:
                    refusal = (exc.code().name, exc.details() or "")
                    if refusal != self._last_refusal:  # once per change, not every retry
                        log.warning("policy watch refused (%s: %s); retrying", *refusal)
                        self._last_refusal = refusal
                    if exc.code() == grpc.StatusCode.PERMISSION_DENIED and self.on_refused:
                        self.on_refused()
            except OSError as exc:
                log.error("cannot write the policy state file: %s", exc)
            except Exception:  # a bug must not end the watch silently: log it and resubscribe
                log.exception("policy watch failed unexpectedly; resubscribing")
            self._stop.wait(self.backoff.next_delay())
