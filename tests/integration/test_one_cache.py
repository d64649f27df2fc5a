"""One cache: bounded, dropped when a host changes or leaves, and the only memo there is.

Answers about a host never outlive it: a host removed and registered again under the
same name with another processor gets the new processor's answer (real dumps, a real
coordinator on loopback gRPC). The cache keeps within its bounds however many keys it
meets, and no module outside `coordinator/cache.py` keeps a memo table of its own.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.cache import AnswerCache, Memo, Region, memo
from cpucompat.coordinator.compatibility import CompatibilityService, Ref
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.storage import open_storage
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.inprocess import Running
from tests.support.paths import FIXTURES, PROJECT_ROOT

AMD = FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt"
INTEL = FIXTURES / "processors" / "intel-skylake-leaf2-edited.cpuid-r.txt"


def live_raw(path: Path) -> object:
    raw = capture_to_proto(load_dump(path))
    raw.source = "cpuid-instruction"
    return raw


def report(running: Running, host: str, path: Path) -> None:
    running.registry.ReportProfile(
        pb.ReportProfileRequest(host_id=host, cluster="c", raw=live_raw(path)), timeout=10
    )


def test_a_removed_host_registered_again_with_another_processor_gets_the_new_answer(
    tmp_path: Path,
) -> None:
    running = Running(tmp_path)
    try:
        report(running, "src", AMD)
        report(running, "tgt", AMD)
        decisions = pb_grpc.DecisionServiceStub(running.channel)
        vms = pb_grpc.VmServiceStub(running.channel)
        check = pb.CheckRequest(source=pb.HostRef(host_id="src"), target=pb.HostRef(host_id="tgt"))
        targets = pb.TargetsRequest(source=pb.HostRef(host_id="src"), cluster="c")
        vms.RegisterVm(
            pb.RegisterVmRequest(vm_name="web", cluster="c", boot_host="src"), timeout=10
        )
        plan = pb.PlanFailoverRequest(vm_name="web", to_host="tgt")
        for _ in range(2):  # asked twice: the second answer comes from the cache
            assert decisions.Check(check, timeout=10).verdict.compatible
            assert [t.verdict.compatible for t in decisions.Targets(targets).targets] == [True]
            assert vms.PlanFailover(plan, timeout=10).plan.action == pb.OFFLINE_ACTION_SAVE
        cache = running.coordinator.registry.cache
        assert cache.naming("tgt") > 0

        running.query.RemoveHost(pb.RemoveHostRequest(host_id="tgt", force=True), timeout=10)
        assert cache.naming("tgt") == 0  # every answer about the removed host is gone
        refused = decisions.Check(check, timeout=10).verdict
        assert not refused.compatible
        assert [r.code for r in refused.reasons] == ["UNKNOWN_HOST"]

        report(running, "tgt", INTEL)  # the same name, another processor
        verdict = decisions.Check(check, timeout=10).verdict
        assert not verdict.compatible
        assert "VENDOR_MISMATCH" in [r.code for r in verdict.reasons]
        listed = decisions.Targets(targets).targets
        assert [(t.host_id, t.verdict.compatible) for t in listed] == [("tgt", False)]
        moved = vms.PlanFailover(plan, timeout=10).plan
        assert moved.action == pb.OFFLINE_ACTION_SHUTDOWN
        assert "VENDOR_MISMATCH" in [r.code for r in moved.verdict.reasons]
    finally:
        running.close()


def test_a_profile_change_replaces_check_and_targets_answers(tmp_path: Path) -> None:
    store = open_storage(tmp_path / "c.db")
    try:
        registry = Registry(store, allow_replayed=True)
        decisions = CompatibilityService(registry)
        registry.report("src", "c", load_dump(AMD))
        registry.report("tgt", "c", load_dump(AMD))
        src, tgt = Ref.host("src"), Ref.host("tgt")
        first = decisions.check(src, tgt)
        assert first.compatible
        assert decisions.check(src, tgt) is first  # the cached answer
        assert [v.compatible for _, v in decisions.targets(src, "c")] == [True]
        before = registry.cache.naming("tgt")
        assert before > 0

        registry.report("tgt", "c", load_dump(INTEL))  # new processor: a new profile version
        assert registry.cache.naming("tgt") == 0
        changed = decisions.check(src, tgt)
        assert not changed.compatible
        assert "VENDOR_MISMATCH" in [r.code for r in changed.reasons]
        assert [v.compatible for _, v in decisions.targets(src, "c")] == [False]
        # The source's own change replaces what it required, too.
        registry.report("src", "c", load_dump(INTEL))
        assert decisions.check(src, tgt).compatible
    finally:
        store.close()


def test_the_cache_stays_within_its_bounds_under_many_distinct_keys() -> None:
    cache = AnswerCache({Region.CHECK: 100, Region.VIEW: 10})
    for i in range(5_000):
        cache.put(Region.CHECK, ("pair", i), f"verdict {i}", [f"h{i % 50}", f"h{i}"])
        cache.put(Region.VIEW, ("view", i), f"view {i}", [f"h{i}"])
    stats = cache.stats()
    assert stats[Region.CHECK].size == 100 and stats[Region.VIEW].size == 10
    assert stats[Region.CHECK].evictions == 4_900
    # The newest are kept, and the host index holds only what is still cached.
    assert cache.get(Region.CHECK, ("pair", 4_999)) == "verdict 4999"
    assert cache.get(Region.CHECK, ("pair", 0)) is None
    assert cache.naming("h0") == 2  # pairs 4900 and 4950; pair 0 went with its answer
    assert sum(cache.naming(f"h{i}") for i in range(50)) == 100
    assert cache.forget_host("h49") == 2  # pairs 4949 and 4999
    assert len(cache) == 108


def test_a_wire_form_lives_and_dies_with_its_answer() -> None:
    cache = AnswerCache()
    answer = cache.put(Region.CHECK, ("a", "b"), ["verdict"], ["a", "b"])
    made: list[str] = []

    def make(text: str) -> str:
        made.append(text)
        return text

    assert cache.form(Region.CHECK, ("a", "b"), answer, lambda: make("wire")) == "wire"
    assert cache.form(Region.CHECK, ("a", "b"), answer, lambda: make("again")) == "wire"
    # Another answer object under the key (made from an older record): never its form.
    assert cache.form(Region.CHECK, ("a", "b"), ["verdict"], lambda: make("other")) == "other"
    cache.forget_host("b")
    assert cache.form(Region.CHECK, ("a", "b"), answer, lambda: make("fresh")) == "fresh"
    assert made == ["wire", "other", "fresh"]


def test_the_memo_is_least_recently_used_and_bounded_across_threads() -> None:
    table: Memo[int, int] = Memo("squares", 64)
    table.put(0, 0)

    def fill(start: int) -> None:
        for i in range(start, start + 2_000):
            table.get_or_make(i, lambda i=i: i * i)  # type: ignore[misc]
            table.get(0)  # kept recent: never the one evicted

    workers = [threading.Thread(target=fill, args=(n * 2_000 + 1,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(table) == 64
    assert table.get(0) == 0
    assert table.stats().evictions == 8_001 - 64

    calls = []

    @memo("doubled", maxsize=3)
    def doubled(n: int) -> int:
        calls.append(n)
        return 2 * n

    assert [doubled(n) for n in (1, 2, 1, 3, 4, 1, 2)] == [2, 4, 2, 6, 8, 2, 4]
    assert calls == [1, 2, 3, 4, 2]  # 2 was the least recently used when 4 came
    with pytest.raises(ValueError, match="at least 1"):
        Memo("empty", 0)


# ---- no memo tables outside the cache module -------------------------------------------

CACHE_MODULE = PROJECT_ROOT / "coordinator" / "cache.py"
MEMO_NAMES = (
    "cache",
    "memo",
    "answers",
    "plans",
    "verdicts",
    "compiled",
    "decoded",
    "requirements",
)
"""A dict held by a module or an instance under a name with one of these words is a memo
table; it belongs in cache.py. Mirrors of stored state (hosts, VMs, policies) are not."""
FORBIDDEN_DECORATORS = {"cache", "lru_cache"}


def _name_of(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def _is_table(value: ast.expr | None, annotation: ast.expr | None) -> bool:
    kinds = ("dict", "OrderedDict", "defaultdict", "WeakValueDictionary", "WeakKeyDictionary")
    if isinstance(value, ast.Dict | ast.DictComp):
        return True
    if isinstance(value, ast.Call) and _name_of(value.func) in kinds:
        return True
    text = ast.unparse(annotation) if annotation is not None else ""
    return any(text.startswith(k) for k in kinds)


def memo_tables(path: Path, root: Path = PROJECT_ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    where = path.relative_to(root)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            module = getattr(node, "module", None) or ""
            for alias in node.names:
                if (module == "functools" and alias.name in FORBIDDEN_DECORATORS) or (
                    alias.name == "functools" and isinstance(node, ast.Import)
                ):
                    found.append(f"{where}:{node.lineno} imports functools' memo decorators")
        elif isinstance(node, ast.Attribute) and _name_of(node.value) == "functools":
            if node.attr in FORBIDDEN_DECORATORS:
                found.append(f"{where}:{node.lineno} uses functools.{node.attr}")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            annotation = node.annotation if isinstance(node, ast.AnnAssign) else None
            for target in targets:
                name = _name_of(target)
                if name is None or not _is_table(node.value, annotation):
                    continue
                if isinstance(target, ast.Name) and not _module_level(tree, node):
                    continue  # a local: lives for one call
                if any(word in name.lower() for word in MEMO_NAMES):
                    found.append(f"{where}:{node.lineno} keeps a memo table {name!r}")
        elif (
            isinstance(node, ast.Call)
            and _name_of(node.func) == "__setattr__"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and str(node.args[1].value).startswith("_")
            and any(word in str(node.args[1].value).lower() for word in MEMO_NAMES)
        ):
            # Caching on a frozen object: object.__setattr__(req, "_compiled", ...)
            found.append(f"{where}:{node.lineno} caches {node.args[1].value!r} on a frozen object")
    return found


def _module_level(tree: ast.Module, node: ast.stmt) -> bool:
    return any(node is stmt for stmt in tree.body)


def test_no_module_outside_the_cache_module_keeps_a_memo_table() -> None:
    sources = sorted((PROJECT_ROOT / "coordinator").rglob("*.py"))
    assert CACHE_MODULE in sources
    found = [line for path in sources if path != CACHE_MODULE for line in memo_tables(path)]
    assert found == []


def test_the_memo_rule_finds_the_tables_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    text = (
        "from functools import lru_cache\n"
        "_VERDICTS: dict[int, str] = {}\n"
        "class S:\n"
        "    def __init__(self) -> None:\n"
        "        self._answers = {}\n"
        "        self._plans: dict[str, int] = dict()\n"
        "        local_cache = {}\n"
        "    def f(self, req: object) -> None:\n"
        "        object.__setattr__(req, '_compiled', 1)\n"
        "        self._requirements: dict[str, object] = {}\n"
    )
    sample.write_text(text)
    found = memo_tables(sample, tmp_path)
    assert [line.split(" ", 1)[0].rsplit(":", 1)[1] for line in found] == [
        "1",
        "2",
        "5",
        "6",
        "10",  # ast.walk: breadth first
        "9",
    ]
