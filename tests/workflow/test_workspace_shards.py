"""`run up --all --shard I/K`: four worker processes share one run through a
PostgreSQL state store (a real server on 127.0.0.1, see ``pg_server.py``).

The workspace has 20 stacks: ``base/main``; ``apps/a001..a018``, each reading
``base/main``'s output; ``top/main``, reading every app's output. Every resource is a
synthetic one that logs each call that succeeded to one file shared by the workers.
What is counted: each stack's state and checkpoints, its ``run`` events, and the
provider-call log.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest

from cli.conftest import cli_env
from stackwright.errors import ProjectError
from stackwright.state.postgres import PostgresStateStore, schema_for

APPS = [f"a{i:03d}" for i in range(1, 19)]
WORKERS = 4

BASE = """\
import stackwright as sw
from stackwright.providers import synthetic

net = synthetic.Thing("net", size=1)
sw.export("net", net.value)
"""

APP = """\
import stackwright as sw
from stackwright.providers import synthetic

base = sw.StackReference("base/main")
one = synthetic.Thing("one", ref=base.output("net"))
two = synthetic.Thing("two", ref=one.value)
sw.export("app", two.value)
"""

TOP = """\
import stackwright as sw
from stackwright.providers import synthetic

apps = [sw.StackReference(f"apps/{{name}}").output("app") for name in {apps!r}]
synthetic.Thing("edge", ref=sw.Output.all(*apps).apply(lambda values: ",".join(values)))
"""


def write_workspace(root: Path, latency: float) -> Path:
    log = root / "calls.log"
    (root / "stackwright-workspace.yaml").write_text(
        "projects:\n"
        "  - {path: base, stacks: [main]}\n"
        "  - {path: apps, stacks: \"*\", depends_on: [base/main]}\n"
        f"  - {{path: top, stacks: [main], depends_on: [{', '.join('apps/' + a for a in APPS)}]}}\n")
    config = f"config:\n  synthetic: {{latency: {latency}, call_log: {log}}}\n"
    for project, program, stacks in (("base", BASE, ["main"]), ("apps", APP, APPS),
                                      ("top", TOP.format(apps=APPS), ["main"])):
        (root / project / "stacks").mkdir(parents=True)
        (root / project / "stackwright.yaml").write_text(f"name: {project}\n")
        (root / project / "__main__.py").write_text(program)
        for stack in stacks:
            (root / project / "stacks" / f"{stack}.yaml").write_text(config)
    return log


def start_workers(root: Path, pg_url: str | None, run_id: str,
                  lease: float = 600) -> list[subprocess.Popen[str]]:
    """``pg_url`` None: each project's state in its own SQLite file (one machine)."""
    env = cli_env(STACKWRIGHT_STATE_URL=pg_url) if pg_url else {
        k: v for k, v in cli_env().items() if k != "STACKWRIGHT_STATE_URL"}
    return [subprocess.Popen(
        [sys.executable, "-m", "stackwright.cli.main", "run", "up", "--all", "--yes",
         "--shard", f"{n}/{WORKERS}", "--run-id", run_id, "--lease", str(lease)],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for n in range(1, WORKERS + 1)]


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def calls_so_far(log: Path) -> list[dict[str, Any]]:
    """``calls`` while workers run: but for one still being written (a reader can see
    part of another process's append)."""
    text = log.read_text() if log.exists() else ""
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


def every_stack() -> list[tuple[str, str]]:
    return [("base", "main"), *(("apps", a) for a in APPS), ("top", "main")]


def on_postgres(pg_url: str) -> Callable[[str], Any]:
    return lambda project: PostgresStateStore(pg_url, schema_for(project))


def on_sqlite(root: Path) -> Callable[[str], Any]:
    from stackwright.state.sqlite import SqliteStateStore

    return lambda project: SqliteStateStore(root / project / ".stackwright" / "state.db")


def check_run(state: Callable[[str], Any], log: Path, run_id: str) -> None:
    """Every stack applied once, after its dependencies, with an `up` checkpoint; every
    resource created once. A stack whose worker was killed during its `up` has that
    `up` checkpointed as interrupted (closed by the worker that took the stack over),
    followed by the taker's own checkpoints (resolving what was pending, then applying
    the rest) unless nothing was left to do."""
    finished: dict[str, float] = {}
    started: dict[str, float] = {}
    interrupted = []
    for project, stack in every_stack():
        with state(project) as store:
            snapshot = store.snapshot(stack)
            assert len(snapshot.resources) == {"apps": 2}.get(project, 1), (project, stack)
            assert not snapshot.pending and store.read_lock(stack) is None
            ups = [cp for cp in store.history(stack) if cp.kind == "up"]
            assert ups, (project, stack)
            results = [cp.result for cp in ups]
            assert set(results[1:]) <= {"succeeded"} and results[0] in ("succeeded", "interrupted"), ups
            interrupted += [f"{project}/{stack}"] * results.count("interrupted")
            started[f"{project}/{stack}"] = ups[0].started_at
            finished[f"{project}/{stack}"] = ups[-1].finished_at
            events = [e for e in store.events(stack, kinds=("run",)) if e.data["run_id"] == run_id]
            assert [e.data["status"] for e in events] == ["ok"], (project, stack, events)
    assert len(interrupted) <= 1, interrupted
    for app in APPS:
        assert finished["base/main"] <= started[f"apps/{app}"]
        assert finished[f"apps/{app}"] <= started["top/main"]
    creates = collections.Counter(c["urn"] for c in calls(log) if c["op"] == "create")
    assert len(creates) == 1 + 2 * len(APPS) + 1
    assert set(creates.values()) == {1}, [u for u, n in creates.items() if n > 1]
    assert not [c for c in calls(log) if c["op"] != "create"]


def test_four_workers_share_a_run(tmp_path: Path, pg_url: str) -> None:
    log = write_workspace(tmp_path, latency=0.02)
    workers = start_workers(tmp_path, pg_url, "run-1")
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    for worker, out in zip(workers, outputs):
        assert worker.returncode == 0, out
        assert "Traceback" not in out
        assert f"run up (shard" in out and "20 stack(s)" in out and "20 ok" in out
    done_here = [int(out.rsplit("; ", 1)[1].split()[0]) for out in outputs]
    assert sum(done_here) == 20, outputs
    check_run(on_postgres(pg_url), log, "run-1")
    pids = {c["pid"] for c in calls(log)}
    assert len(pids) > 1, "the work was shared"


def test_four_workers_share_a_run_on_local_sqlite_state(tmp_path: Path) -> None:
    """Workers on one machine share a run through each project's SQLite file, which
    whichever starts first makes (the others open it)."""
    log = write_workspace(tmp_path, latency=0.02)
    workers = start_workers(tmp_path, None, "run-5")
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    for worker, out in zip(workers, outputs):
        assert worker.returncode == 0, out
        assert "20 stack(s)" in out and "20 ok" in out, out
    assert sum(int(out.rsplit("; ", 1)[1].split()[0]) for out in outputs) == 20, outputs
    check_run(on_sqlite(tmp_path), log, "run-5")


def test_claims_outlasting_their_lease_are_renewed_not_taken_over(tmp_path: Path, pg_url: str) -> None:
    log = write_workspace(tmp_path, latency=2.0)  # an app stack takes 4 s; the lease is 3 s
    workers = start_workers(tmp_path, pg_url, "run-3", lease=3)
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    for worker, out in zip(workers, outputs):
        assert worker.returncode == 0, out
    check_run(on_postgres(pg_url), log, "run-3")


def test_a_claim_is_renewed_while_its_program_runs(tmp_path: Path) -> None:
    """A claimed stack's program runs before its update, under the claim: a program that
    outlasts the lease keeps its claim (renewed), so the idle worker neither takes the
    stack over nor runs it a second time."""
    from stackwright.state.sqlite import SqliteStateStore

    log = tmp_path / "programs.log"
    (tmp_path / "stackwright-workspace.yaml").write_text(
        "projects:\n  - {path: slow, stacks: [dev]}\n  - {path: quick, stacks: [dev]}\n")
    for project, program in (("slow", f"import time\nopen({str(log)!r}, 'a').write('slow\\n')\ntime.sleep(2.5)\n"),
                             ("quick", "")):
        (tmp_path / project / "stacks").mkdir(parents=True)
        (tmp_path / project / "stackwright.yaml").write_text(f"name: {project}\n")
        (tmp_path / project / "__main__.py").write_text(program)
    env = {k: v for k, v in cli_env().items() if k != "STACKWRIGHT_STATE_URL"}
    workers = [subprocess.Popen(
        [sys.executable, "-m", "stackwright.cli.main", "run", "up", "--all", "--yes", "--shard", f"{n}/2",
         "--run-id", "r", "--lease", "1.5"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for n in (1, 2)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    for worker, out in zip(workers, outputs):
        assert worker.returncode == 0, out
    assert log.read_text() == "slow\n"
    with SqliteStateStore(tmp_path / "slow" / ".stackwright" / "state.db") as store:
        assert [e.data["status"] for e in store.events("dev", kinds=("run",))] == ["ok"]


def test_a_killed_worker_is_taken_over(tmp_path: Path, pg_url: str) -> None:
    log = write_workspace(tmp_path, latency=0.15)
    workers = start_workers(tmp_path, pg_url, "run-2")
    victim = _kill_one_midway(workers, log)
    survivors = [w for w in workers if w.pid != victim.pid]
    outputs = [w.communicate(timeout=240)[0] for w in survivors]
    assert victim.returncode == -signal.SIGKILL
    for worker, out in zip(survivors, outputs):
        assert worker.returncode == 0, out
        assert "20 ok" in out, out
    last = [c for c in calls(log) if c["pid"] == victim.pid][-1]
    stack, project = last["urn"].split("::")[:2]
    check_run(on_postgres(pg_url), log, "run-2")
    with PostgresStateStore(pg_url, schema_for(project)) as store:
        [event] = [e for e in store.events(stack, kinds=("run",)) if e.data["run_id"] == "run-2"]
    assert f"pid {victim.pid} " not in event.data["worker"], "another worker took the stack over"


def _kill_one_midway(workers: list[subprocess.Popen[str]], log: Path) -> subprocess.Popen[str]:
    """SIGKILL the worker that just created an app stack's first resource (so it is
    mid-stack: the second is still to come), once a few calls went through."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        made = calls_so_far(log)
        if len(made) >= 6 and made[-1]["urn"].endswith("::one"):
            pid = made[-1]["pid"]
            victim = next(w for w in workers if w.pid == pid)
            os.kill(pid, signal.SIGKILL)
            victim.wait(timeout=30)  # reaped: a zombie still answers kill(pid, 0)
            return victim
        time.sleep(0.01)
    for worker in workers:
        worker.kill()
    pytest.fail("the workers made no provider call in 120 s")


def test_a_claim_is_stale_when_its_lease_ran_out_or_its_process_is_gone() -> None:
    from stackwright.operations.session import host_name
    from stackwright.state.records import LockInfo
    from stackwright.workflow.shards import Shard, preferred_order, stale

    now = 1000.0
    remote = LockInfo("w", 1, "elsewhere", now - 20, "run-up r1", "t")
    assert not stale(remote, lease=30, now=now)
    assert stale(remote, lease=10, now=now)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    here = LockInfo("w", int(gone.stdout), host_name(), now, "run-up r1", "t")
    assert stale(here, lease=30, now=now)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    assert stale(LockInfo("w", zombie.pid, host_name(), now, "run-up r1", "t"), 30, now)
    zombie.wait()
    manual = LockInfo("w", int(gone.stdout), host_name(), now - 99, "up", "t")
    assert not stale(manual, lease=10, now=now), "only run claims are ever taken over"
    assert preferred_order(["a", "b", "c", "d", "e"], Shard.parse("2/2")) == ["b", "d", "a", "c", "e"]
    for bad in ("0/2", "3/2", "2", "x/y"):
        with pytest.raises(ProjectError, match="invalid shard"):
            Shard.parse(bad)


def test_a_worker_killed_before_a_checkpoint_leaves_it_interrupted(tmp_path: Path, pg_url: str) -> None:
    """Killed (``os._exit``, at a chosen point) after ``base/main``'s resource was
    recorded but before its checkpoint: the next worker of the run finds the claim
    stale, closes the open `up` as interrupted, and has nothing left to do there."""
    from test_interrupted_operation import KILLED

    log = write_workspace(tmp_path, latency=0.0)
    command = ["run", "up", "--all", "--yes", "--shard", "1/1", "--run-id", "run-4"]
    env = cli_env(STACKWRIGHT_STATE_URL=pg_url)
    killed = subprocess.run([sys.executable, "-c", KILLED, "before-checkpoint", "0", *command],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert killed.returncode == 9, killed.stdout + killed.stderr
    with PostgresStateStore(pg_url, schema_for("base")) as store:
        assert store.history("main") == [] and store.read_lock("main") is not None
    taker = subprocess.run([sys.executable, "-m", "stackwright.cli.main", *command],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert taker.returncode == 0, taker.stdout + taker.stderr
    check_run(on_postgres(pg_url), log, "run-4")
    with PostgresStateStore(pg_url, schema_for("base")) as store:
        [up] = store.history("main")
    assert (up.result, up.counts) == ("interrupted", {"create": 1}), up
    assert "run-up run-4" in up.message, up.message


def test_workers_share_finding_exports_and_imports(tmp_path: Path) -> None:
    """A stack's links are found when it could start; a stack that exports and imports
    nothing waits for no other stack's links, and no worker runs other programs for it.
    One that does waits until every stack's are known: idle workers then run only their
    own shard's programs, record them, and take the others' from the events their
    workers recorded; past the deadline (a worker died) a worker works out the rest."""
    from stackwright.state.sqlite import SqliteStateStore
    from stackwright.workflow.multistack import RunOptions, StackRunner, initialize
    from stackwright.workflow.shards import LINKS_EVENT, Shard, ShardOptions, _SharedLinks
    from stackwright.workflow.workspace import load_workspace, select_all, stack_graph

    (tmp_path / "stackwright-workspace.yaml").write_text(
        "projects:\n  - {path: mine, stacks: [dev]}\n  - {path: theirs, stacks: [b, c]}\n")
    for project, program in (("mine", BASE), ("theirs", "raise RuntimeError('not run by this worker')\n")):
        (tmp_path / project / "stacks").mkdir(parents=True)
        (tmp_path / project / "stackwright.yaml").write_text(f"name: {project}\n")
        (tmp_path / project / "__main__.py").write_text(program)
    workspace = load_workspace(tmp_path / "stackwright-workspace.yaml")
    graph = stack_graph(workspace)
    refs = select_all(graph).refs
    assert refs == ["mine/dev", "theirs/b", "theirs/c"]
    initialize(workspace, refs)
    with SqliteStateStore(tmp_path / "theirs" / ".stackwright" / "state.db") as store:
        store.record_event("b", LINKS_EVENT, "w2", {"run_id": "r", "stacks": ["b"], "failed": {},
                                                     "links": {"b": {"exports": {"N": "t"}, "imports": {}}}})
        store.record_event("c", LINKS_EVENT, "w3", {"run_id": "r", "stacks": ["c"], "failed": {},
                                                     "links": {"c": {"exports": {}, "imports": {"N": "u"}}}})
        store.record_event("c", LINKS_EVENT, "w9", {"run_id": "other run", "stacks": ["c"], "failed": {},
                                                     "links": {}})
        store.record_event("b", LINKS_EVENT, "w2", {"run_id": "t", "stacks": ["b"], "failed": {},
                                                     "links": {"b": {"exports": {"N": "t"}, "imports": {}}}})
    options = RunOptions(action="up", who="tester")
    with StackRunner(workspace, options) as runner:
        links = _SharedLinks(runner, ShardOptions(Shard(1, 3), "r"), graph)
        assert links.deps("mine/dev") is None  # nothing known yet
        links.learn(["mine/dev"])  # as a worker learning its share does
        assert links.deps("mine/dev") == [] and links.deps("theirs/c") is None
        links.refresh()
        assert links.deps("theirs/c") == ["theirs/b"] and not runner.unlinked
    with StackRunner(workspace, options) as runner:  # run "s": nobody recorded b and c
        links = _SharedLinks(runner, ShardOptions(Shard(1, 3), "s"), graph)
        links.refresh()
        assert links.deps("theirs/b") is None and not runner.unlinked
        assert not links.idle([])  # nothing waits for the whole ordering: no program runs
        assert "mine/dev" not in links.links
        links.learn(["theirs/b"])
        assert list(runner.unlinked) == ["theirs/b"] and links.deps("theirs/c") is None
        assert "not run by this worker" in runner.unlinked["theirs/b"].headline()
    with StackRunner(workspace, options) as runner:  # run "t": b exports, so it needs every link
        links = _SharedLinks(runner, ShardOptions(Shard(1, 3), "t"), graph)
        links.refresh()
        assert links.deps("mine/dev") is None and links.deps("theirs/b") is None
        assert links.idle(["theirs/b"])  # its own share first
        assert links.deps("mine/dev") == [] and not runner.unlinked
        assert not links.idle(["theirs/b"])  # recorded; before the deadline c's worker may be late
        with SqliteStateStore(tmp_path / "mine" / ".stackwright" / "state.db") as store:
            [event] = [e for e in store.events(None, kinds=(LINKS_EVENT,)) if e.data["run_id"] == "t"]
        assert event.data["stacks"] == ["dev"] and event.data["links"] == {}
        links.deadline = 0.0  # c's worker is gone
        assert links.idle(["theirs/b"])
        assert list(runner.unlinked) == ["theirs/c"] and links.deps("theirs/b") == []


def test_a_stack_that_exports_or_imports_waits_for_the_whole_ordering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker alone on a run of two shards: ``solo`` exports and imports nothing and
    runs at once; ``net`` exports a name ``app`` imports, so each is claimed, its links
    found, and let go until every stack's links are known (here, once each was
    claimed); then ``net`` runs before ``app``. Each program's links are found once,
    and only under the claim; no claim is left behind."""
    from stackwright.plan.links import NO_LINKS, StackLinks
    from stackwright.state.sqlite import SqliteStateStore
    from stackwright.workflow.multistack import OK, RunOptions, StackResult, StackRunner
    from stackwright.workflow.shards import Shard, ShardOptions, run_shard

    workspace, graph, refs = three_projects(tmp_path)
    links = {"net/dev": StackLinks({"N": "vpc"}, {}), "app/dev": StackLinks({}, {"N": "subnet"}),
             "solo/dev": NO_LINKS}
    found: list[str] = []
    ran: list[str] = []

    def links_of(runner: StackRunner, wanted: Any) -> dict[str, StackLinks]:
        for ref in wanted:
            held = runner.store(runner.entry(ref).project).read_lock(ref.rpartition("/")[2])
            assert held is not None and held.operation == "run-up r", ref
            found.append(ref)
        return {ref: links[ref] for ref in wanted}

    def run(runner: StackRunner, ref: str, lock: Any = None) -> StackResult:
        ran.append(ref)
        return StackResult(ref, OK)

    monkeypatch.setattr(StackRunner, "links_of", links_of)
    monkeypatch.setattr(StackRunner, "links_of_claimed", lambda runner, ref: links_of(runner, [ref]))
    monkeypatch.setattr(StackRunner, "run", run)
    options = RunOptions(action="up", who="tester")
    results, done = run_shard(workspace, graph, options, ShardOptions(Shard(1, 2), "r", poll=0.01))
    assert sorted(ran) == sorted(refs) and ran[0] == "solo/dev"
    assert ran.index("net/dev") < ran.index("app/dev")
    assert sorted(found) == sorted(refs) and {d.status for d in done.values()} == {"ok"}
    for project in ("app", "net", "solo"):
        with SqliteStateStore(tmp_path / project / ".stackwright" / "state.db") as store:
            assert store.read_lock("dev") is None, project


def test_a_claimed_stacks_program_runs_once_for_its_links_and_its_update(tmp_path: Path) -> None:
    """A stack claimed before its links are known runs its program for real, and that
    run serves its update too: each program of a run of two shards ran once, not twice."""
    from stackwright.workflow.multistack import OK, RunOptions
    from stackwright.workflow.shards import Shard, ShardOptions, run_shard

    log = tmp_path / "programs.log"
    workspace, graph, refs = three_projects(
        tmp_path, f"import stackwright as sw\nwith open({str(log)!r}, 'a') as f: f.write(sw.get_project() + '\\n')\n")
    results, done = run_shard(workspace, graph, RunOptions(action="up", who="tester"),
                              ShardOptions(Shard(1, 2), "r", poll=0.01))
    assert {ref: d.status for ref, d in done.items()} == {ref: OK for ref in refs}
    assert sorted(log.read_text().split()) == ["app", "net", "solo"]


def test_a_claim_taken_over_while_its_program_ran_is_not_applied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another worker takes a claim over while its program runs (the renewer finds the
    lock in other hands): the worker lets the stack go instead of applying it beside
    the taker, and applies it only once the taker's claim is stale."""
    import socket

    from stackwright.operations.session import StackSession
    from stackwright.state.records import LockInfo
    from stackwright.state.sqlite import SqliteStateStore
    from stackwright.workflow.multistack import OK, RunOptions
    from stackwright.workflow.shards import Shard, ShardOptions, run_shard

    workspace, graph, refs = three_projects(tmp_path)
    real = StackSession.run_program
    ran: list[str] = []

    def run_program(session: StackSession, targets: Any = ()) -> Any:
        ref = f"{session.project.name}/{session.stack}"
        if ref == "net/dev" and ref not in ran:
            with SqliteStateStore(tmp_path / "net" / ".stackwright" / "state.db") as store:
                store.break_lock("dev")
                store.acquire_lock("dev", LockInfo("other", os.getpid(), socket.gethostname(), time.time(),
                                                   "run-up r", "taker"))
            time.sleep(0.35)  # the renewer (every 0.1 s) finds the claim lost
        ran.append(ref)
        return real(session, targets)

    monkeypatch.setattr(StackSession, "run_program", run_program)
    results, done = run_shard(workspace, graph, RunOptions(action="up", who="tester"),
                              ShardOptions(Shard(1, 2), "r", lease=0.6, poll=0.01))
    assert {ref: d.status for ref, d in done.items()} == {ref: OK for ref in refs}
    assert ran.count("net/dev") == 2  # let go once, then taken over from the stale taker
    with SqliteStateStore(tmp_path / "net" / ".stackwright" / "state.db") as store:
        assert [e.data["status"] for e in store.events("dev", kinds=("run",))] == ["ok"]


def test_a_claimed_program_that_can_export_or_import_is_run_again_after_being_let_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a claimed stack's program declares a type that exports or imports, its links
    come from the unknown-reference run every worker makes. ``app`` (imports, claimed
    first) is let go until the whole ordering is known and runs its program again when
    claimed again (the first run may be out of date); ``solo`` (no links) and ``net``
    (whose links complete the ordering) start on the run made at their claim."""
    from stackwright.operations.session import StackSession
    from stackwright.plan.links import NO_LINKS, StackLinks
    from stackwright.workflow.multistack import OK, RunOptions, StackRunner
    from stackwright.workflow.shards import Shard, ShardOptions, run_shard

    workspace, graph, refs = three_projects(tmp_path)
    links = {"net/dev": StackLinks({"N": "vpc"}, {}), "app/dev": StackLinks({}, {"N": "subnet"}),
             "solo/dev": NO_LINKS}
    real = StackSession.run_program
    ran: list[str] = []
    found: list[str] = []

    def run_program(session: StackSession, targets: Any = ()) -> Any:
        ran.append(f"{session.project.name}/{session.stack}")
        return real(session, targets)

    def links_of(runner: StackRunner, wanted: Any) -> dict[str, StackLinks]:
        found.extend(wanted)
        return {ref: links[ref] for ref in wanted}

    monkeypatch.setattr(StackSession, "run_program", run_program)
    monkeypatch.setattr(StackRunner, "links_of", links_of)
    monkeypatch.setattr("stackwright.plan.links.declares_links", lambda desired, providers: True)
    results, done = run_shard(workspace, graph, RunOptions(action="up", who="tester"),
                              ShardOptions(Shard(1, 2), "r", poll=0.01))
    assert {ref: d.status for ref, d in done.items()} == {ref: OK for ref in refs}
    assert sorted(found) == sorted(refs)
    assert collections.Counter(ran) == {"app/dev": 2, "net/dev": 1, "solo/dev": 1}


def test_a_claimed_stack_of_an_unknown_type_fails_alone(tmp_path: Path) -> None:
    """A program declaring a resource of a provider nobody has fails its stack when the
    claim looks for the stack's links; the worker goes on with the other stacks."""
    from stackwright.workflow.multistack import FAILED, OK, RunOptions
    from stackwright.workflow.shards import Shard, ShardOptions, run_shard

    workspace, graph, refs = three_projects(tmp_path)
    (tmp_path / "net" / "__main__.py").write_text(
        "import stackwright as sw\n\nclass Bad(sw.Resource, type='nope:Thing'):\n    pass\n\nBad('x')\n")
    results, done = run_shard(workspace, graph, RunOptions(action="up", who="tester"),
                              ShardOptions(Shard(1, 2), "r", poll=0.01))
    assert {ref: d.status for ref, d in done.items()} == {"app/dev": OK, "net/dev": FAILED, "solo/dev": OK}
    assert "nope" in str(results["net/dev"].error)


def test_a_claim_taken_over_and_finished_while_its_program_ran_is_not_applied_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The taker applies the stack and releases its lock before the renewer looks again:
    the lock is free, and renewing does not take it back (that applied the stack twice)."""
    import socket

    from stackwright.operations.session import StackSession
    from stackwright.state.records import LockInfo
    from stackwright.state.sqlite import SqliteStateStore
    from stackwright.workflow.multistack import OK, RunOptions
    from stackwright.workflow.shards import RUN_EVENT, Shard, ShardOptions, run_shard

    workspace, graph, refs = three_projects(tmp_path)
    real = StackSession.run_program
    ran: list[str] = []

    def run_program(session: StackSession, targets: Any = ()) -> Any:
        ref = f"{session.project.name}/{session.stack}"
        ran.append(ref)
        if ref == "net/dev":
            with SqliteStateStore(tmp_path / "net" / ".stackwright" / "state.db") as store:
                store.break_lock("dev")
                store.acquire_lock("dev", LockInfo("other", os.getpid(), socket.gethostname(), time.time(),
                                                   "run-up r", "taker"))
                store.record_event("dev", RUN_EVENT, "other", {"run_id": "r", "status": "ok", "cause": None,
                                                               "worker": "the taker"})
                store.release_lock("dev", "taker")
            time.sleep(0.35)  # the renewer (every 0.1 s) looks at the lock
        return real(session, targets)

    monkeypatch.setattr(StackSession, "run_program", run_program)
    results, done = run_shard(workspace, graph, RunOptions(action="up", who="tester"),
                              ShardOptions(Shard(1, 2), "r", lease=0.6, poll=0.01))
    assert {ref: d.status for ref, d in done.items()} == {ref: OK for ref in refs}
    assert done["net/dev"].worker == "the taker" and "net/dev" not in results
    assert ran.count("net/dev") == 1
    with SqliteStateStore(tmp_path / "net" / ".stackwright" / "state.db") as store:
        assert len(store.events("dev", kinds=(RUN_EVENT,))) == 1


def test_a_claimed_stack_that_cannot_be_opened_fails_alone(tmp_path: Path) -> None:
    """A stack whose config is not valid fails with the file's error when it is claimed;
    the worker goes on with the other stacks."""
    from stackwright.workflow.multistack import FAILED, OK, RunOptions
    from stackwright.workflow.shards import Shard, ShardOptions, run_shard

    workspace, graph, refs = three_projects(tmp_path)
    (tmp_path / "net" / "stacks" / "dev.yaml").write_text("config: [not, a, mapping]\n")
    results, done = run_shard(workspace, graph, RunOptions(action="up", who="tester"),
                              ShardOptions(Shard(1, 2), "r", poll=0.01))
    assert {ref: d.status for ref, d in done.items()} == {"app/dev": OK, "net/dev": FAILED, "solo/dev": OK}
    error = results["net/dev"].error
    assert error is not None and "dev.yaml" in str(error.file), error


def three_projects(tmp_path: Path, program: str = "") -> tuple[Any, Any, list[str]]:
    """A workspace of three one-stack projects with empty programs, initialized."""
    from stackwright.workflow.multistack import initialize
    from stackwright.workflow.workspace import load_workspace, select_all, stack_graph

    (tmp_path / "stackwright-workspace.yaml").write_text(
        "projects:\n  - {path: app, stacks: [dev]}\n  - {path: net, stacks: [dev]}\n"
        "  - {path: solo, stacks: [dev]}\n")
    for project in ("app", "net", "solo"):
        (tmp_path / project / "stacks").mkdir(parents=True)
        (tmp_path / project / "stackwright.yaml").write_text(f"name: {project}\n")
        (tmp_path / project / "__main__.py").write_text(program)
    workspace = load_workspace(tmp_path / "stackwright-workspace.yaml")
    graph = stack_graph(workspace)
    refs = select_all(graph).refs
    initialize(workspace, refs)
    return workspace, graph, refs


def test_ctrl_c_while_a_claimed_stacks_links_are_found_leaves_no_claim(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The program of a claimed stack runs to find its links; Ctrl-C there ends the
    worker, and the claim is released for the other workers (not held until its lease
    runs out)."""
    from stackwright.operations.session import StackSession
    from stackwright.state.sqlite import SqliteStateStore
    from stackwright.workflow.multistack import RunOptions
    from stackwright.workflow.shards import Shard, ShardOptions, run_shard

    workspace, graph, _ = three_projects(tmp_path)
    claimed: list[str] = []

    def run_program(session: StackSession, targets: Any = ()) -> Any:
        claimed.append(f"{session.project.name}/{session.stack}")
        raise KeyboardInterrupt

    monkeypatch.setattr(StackSession, "run_program", run_program)
    with pytest.raises(KeyboardInterrupt):
        run_shard(workspace, graph, RunOptions(action="up", who="tester"), ShardOptions(Shard(1, 2), "r", poll=0.01))
    assert len(claimed) == 1
    for project in ("app", "net", "solo"):
        with SqliteStateStore(tmp_path / project / ".stackwright" / "state.db") as store:
            assert store.read_lock("dev") is None, project


def test_a_notice_only_points_a_worker_at_a_stack_to_read() -> None:
    """A waiting worker believes what it reads under the stack, not what a notice says
    (anyone able to connect to the database can send one); a notice it cannot place, or
    of exports and imports found, sends it to read everything."""
    from stackwright.graph import Graph
    from stackwright.state.records import EventNotice
    from stackwright.workflow.shards import Done, Shard, ShardOptions, _Worker

    worker = _Worker.__new__(_Worker)
    worker.graph = Graph({"net/dev": [], "app/dev": ["net/dev"], "app/prod": ["net/dev"]})
    worker.options = ShardOptions(Shard(1, 2), "r1")
    worker.done = {"app/prod": Done("ok", None, "w2")}
    recorded = {"net/dev": Done("ok", None, "w1")}
    read: list[tuple[str, list[str]]] = []

    def finished_of(name: str, stacks: Collection[str] | None = None) -> dict[str, Done]:
        assert stacks is not None
        read.append((name, sorted(stacks)))
        return {ref: done for ref, done in recorded.items() if ref.partition("/")[::2] in {(name, s) for s in stacks}}

    worker.finished_of = finished_of  # type: ignore[method-assign]
    projects = {"stackwright_net": "net", "stackwright_app": "app"}
    told = [EventNotice("stackwright_net", "dev", "run"), EventNotice("stackwright_app", "dev", "run"),
            EventNotice("stackwright_app", "prod", "run"), EventNotice("stackwright_app", "other", "run"),
            EventNotice("stackwright_app", "dev", "up"), EventNotice("stackwright_elsewhere", "dev", "run-links")]
    assert worker.learned(told, projects)
    # One read per project; app/prod known, app/other not in the run, `up` not a fate.
    assert read == [("net", ["dev"]), ("app", ["dev"])]
    assert worker.done == {"app/prod": Done("ok", None, "w2"), "net/dev": Done("ok", None, "w1")}  # app/dev: no event
    assert not worker.learned([None], projects)
    assert not worker.learned([EventNotice("stackwright_app", "dev", "run-links")], projects)
