"""Workspace benchmarks (`make bench`, or `python bench/workspace_bench.py [NAME...]`
with NAME among changed, overhead, shards; all three by default).

changed: a git repository holding a workspace of 1,000 stacks: `network` (staging,
  production), `cluster` (staging, production, each depending on the network stack of
  its name) and `tenants`, whose 996 stacks each hold three tenants in config and read
  the network's and the cluster's outputs through StackReference. Setup applies them
  all with `stackwright run up --all --yes` (its time is reported). Then one tenant
  stack's config changes in a commit; the figure is the wall time of the whole
  `stackwright run preview --changed-since HEAD~1` command (median of 3), which must
  select exactly that stack. Target: <= 1.0 s.
overhead: `stackwright run up --all --yes` over 1,000 trivial stacks (one synthetic
  resource each, no latency) and over 1 such stack, whole commands; the per-stack
  overhead is the difference divided by 999 (median of 3). Target: <= 30 ms.
shards: a workspace of 200 stacks (one base stack, 198 that read it, one that reads
  those 198) whose synthetic resources take 50 ms each, on a PostgreSQL server started
  here (tests/pg_server.py), the stacks created beforehand. `run up --all --shard 1/1`
  on one fresh database, and four `--shard I/4` processes at once on another; each
  figure is the wall time from starting the workers until the last one exits. A third
  run SIGKILLs one of four workers midway. After each run, the state and a log of the
  provider calls must show every resource recorded and created exactly once.
  Target: four workers <= 1.15 x (one worker / 4). Printed: both walls, the ratio, the
  target and whether it is met, the CPU time (user + sys) of the workers of each run,
  the load average before and after (wall figures mean little on a loaded machine:
  compare CPU), the CPU time the VM's host took for others during each run (`/proc/stat`
  steal: a run during which it grew ran on a slower machine), and for the one-worker and
  four-worker runs where the wall time went (`timeline`: start-up until the first
  stack, base, apps, top, exit; per worker). On a machine with fewer cores than
  workers, one more run with one worker per core and its ratio (`one_worker_per_core`):
  there the workers' start-ups share the cores, which CI matrix jobs do not.
  The package's bytecode is compiled first (PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compile_package

CLI = [sys.executable, "-m", "stackwright.cli.main"]
TENANT_STACKS = 996
CHANGED = "t0500"
TARGET_S = 1.0
OVERHEAD_TARGET_MS = 30.0
SHARD_TARGET = 1.15

WORKSPACE = """\
python_path: [lib]
projects:
  - path: network
    stacks: [staging, production]
  - path: cluster
    depends_on: ["network/{stack}"]
    stacks: [staging, production]
  - path: tenants
    stacks: "*"
    depends_on: [network/production, cluster/production]
"""

NETWORK = """\
import stackwright as sw
from stackwright.providers import local

vpc = local.File("vpc", path=sw.fmt("out/{}/vpc.txt", sw.get_stack()), content="10.0.0.0/16")
sw.export("vpc_id", sw.fmt("vpc-{}", sw.get_stack()))
"""

CLUSTER = """\
import stackwright as sw
from stackwright.providers import local

network = sw.StackReference(f"network/{sw.get_stack()}")
kube = local.File("kubeconfig", path=sw.fmt("out/{}/kubeconfig", sw.get_stack()),
                  content=sw.fmt("cluster in {}", network.output("vpc_id")))
sw.export("endpoint", sw.fmt("https://{}.k8s.example", sw.get_stack()))
"""

TENANTS = """\
import stackwright as sw
from stackwright.providers import local
from shared.naming import tenant_path

config = sw.Config()
network = sw.StackReference("network/production")
cluster = sw.StackReference("cluster/production")
for tenant in config.require_object("tenants"):
    local.File(tenant["name"], path=tenant_path(sw.get_stack(), tenant["name"]),
               content=sw.fmt("{} {} {} {}", tenant["name"], tenant["plan"],
                              network.output("vpc_id"), cluster.output("endpoint")))
sw.export("tenants", len(config.require_object("tenants")))
"""

NAMING = """\
def tenant_path(stack: str, name: str) -> str:
    return f"out/{stack}/{name}.txt"
"""


def tenant_config(index: int, count: int = 3) -> str:
    lines = ["config:", "  tenants:"]
    for n in range(count):
        lines.append(f"    - {{name: tenant-{index:04d}-{n}, plan: {'pro' if n else 'basic'}}}")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    write(repo / "stackwright-workspace.yaml", WORKSPACE)
    write(repo / ".gitignore", ".stackwright/\nout/\n__pycache__/\n")
    write(repo / "lib" / "shared" / "__init__.py", "")
    write(repo / "lib" / "shared" / "naming.py", NAMING)
    for name, program, stacks in (("network", NETWORK, ["staging", "production"]),
                                  ("cluster", CLUSTER, ["staging", "production"])):
        write(repo / name / "stackwright.yaml", f"name: {name}\n")
        write(repo / name / "__main__.py", program)
        for stack in stacks:
            write(repo / name / "stacks" / f"{stack}.yaml", "config: {}\n")
    write(repo / "tenants" / "stackwright.yaml", "name: tenants\n")
    write(repo / "tenants" / "__main__.py", TENANTS)
    for index in range(1, TENANT_STACKS + 1):
        write(repo / "tenants" / "stacks" / f"t{index:04d}.yaml", tenant_config(index))
    git(repo, "init", "-q")
    commit(repo, "workspace of 1,000 stacks")
    return repo


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=bench@example.com", "-c", "user.name=bench", "commit", "-q",
        "-m", message)


def cli(repo: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([*CLI, *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "STACKWRIGHT_USER": "bench"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"stackwright {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr}")
    return wall, done.stdout


def bench_changed() -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="sw-workspace-bench-"))
    try:
        repo = make_repo(root)
        result: dict[str, object] = {"stacks": TENANT_STACKS + 4}
        wall, _ = cli(repo, "run", "up", "--all", "--yes")
        result["run_up_all_s"] = round(wall, 2)
        changed = repo / "tenants" / "stacks" / f"{CHANGED}.yaml"
        changed.write_text(tenant_config(500, count=4))
        commit(repo, f"one more tenant in {CHANGED}")
        walls = []
        for _ in range(3):
            wall, out = cli(repo, "run", "preview", "--changed-since", "HEAD~1")
            check_selection(out)
            walls.append(wall)
        result.update({"changed_since_preview_median_s": round(statistics.median(walls), 3),
                       "changed_since_preview_runs_s": [round(w, 3) for w in walls],
                       "target_s": TARGET_S, "selected": [f"tenants/{CHANGED}"]})
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


TRIVIAL = """\
import stackwright as sw
from stackwright.providers import synthetic

thing = synthetic.Thing("thing", size=1)
sw.export("value", thing.value)
"""


def trivial_workspace(root: Path, stacks: int) -> Path:
    write(root / "stackwright-workspace.yaml", "projects:\n  - {path: app, stacks: \"*\"}\n")
    write(root / "app" / "stackwright.yaml", "name: app\n")
    write(root / "app" / "__main__.py", TRIVIAL)
    for index in range(stacks):
        write(root / "app" / "stacks" / f"s{index:04d}.yaml", "config: {}\n")
    return root


def bench_overhead(stacks: int = 1000) -> dict[str, object]:
    """Per-stack cost of `run up --all` beyond a one-stack run, whole commands."""
    per_stack = []
    for attempt in range(3):
        root = Path(tempfile.mkdtemp(prefix="sw-overhead-bench-"))
        try:
            many, _ = cli(trivial_workspace(root / "many", stacks), "run", "up", "--all", "--yes")
            one, _ = cli(trivial_workspace(root / "one", 1), "run", "up", "--all", "--yes")
        finally:
            shutil.rmtree(root, ignore_errors=True)
        per_stack.append((many - one) / (stacks - 1))
    median_ms = statistics.median(per_stack) * 1000
    return {"stacks": stacks, "per_stack_overhead_median_ms": round(median_ms, 1),
            "runs_ms": [round(p * 1000, 1) for p in per_stack], "target_ms": OVERHEAD_TARGET_MS}


SHARD_BASE = """\
import stackwright as sw
from stackwright.providers import synthetic

sw.export("net", synthetic.Thing("net").value)
"""

SHARD_APP = """\
import stackwright as sw
from stackwright.providers import synthetic

one = synthetic.Thing("one", ref=sw.StackReference("base/main").output("net"))
sw.export("app", synthetic.Thing("two", ref=one.value).value)
"""

SHARD_TOP = """\
import stackwright as sw
from stackwright.providers import synthetic

apps = [sw.StackReference(f"apps/a{{n:03d}}").output("app") for n in range({count})]
synthetic.Thing("edge", ref=sw.Output.all(*apps).apply(lambda values: str(len(values))))
"""


def shard_workspace(root: Path, stacks: int, latency: float) -> Path:
    """The workspace; every provider call that succeeds is logged to ``calls.log``."""
    apps = [f"a{n:03d}" for n in range(stacks - 2)]
    write(root / "stackwright-workspace.yaml",
          "projects:\n  - {path: base, stacks: [main]}\n"
          "  - {path: apps, stacks: \"*\", depends_on: [base/main]}\n"
          f"  - {{path: top, stacks: [main], depends_on: [{', '.join('apps/' + a for a in apps)}]}}\n")
    config = f"config:\n  synthetic: {{latency: {latency}, call_log: {root / 'calls.log'}}}\n"
    for project, program, names in (("base", SHARD_BASE, ["main"]), ("apps", SHARD_APP, apps),
                                     ("top", SHARD_TOP.format(count=len(apps)), ["main"])):
        write(root / project / "stackwright.yaml", f"name: {project}\n")
        write(root / project / "__main__.py", program)
        for name in names:
            write(root / project / "stacks" / f"{name}.yaml", config)
    return root


def run_workers(root: Path, url: str, count: int, kill_after: int = 0) -> tuple[float, float, float]:
    """Wall time until the last of ``count`` workers of one run exits, the CPU time the
    workers used, and when they were started (epoch seconds). The stacks are created in the database first (as they are after
    a workspace's first run). With ``kill_after``, the worker that made the
    ``kill_after``-th provider call is SIGKILLed then (midway through a stack)."""
    from stackwright.workflow.multistack import initialize
    from stackwright.workflow.workspace import load_workspace

    env = {**os.environ, "STACKWRIGHT_USER": "bench", "STACKWRIGHT_STATE_URL": url}
    os.environ["STACKWRIGHT_STATE_URL"] = url
    try:
        workspace = load_workspace(root / "stackwright-workspace.yaml")
        initialize(workspace, [stack.ref for stack in workspace.stacks()])
    finally:
        del os.environ["STACKWRIGHT_STATE_URL"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.time()
    start = time.perf_counter()
    workers = [subprocess.Popen([*CLI, "run", "up", "--all", "--yes", "--shard", f"{n}/{count}",
                                 "--run-id", "bench"], cwd=root, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for n in range(1, count + 1)]
    victim = kill_one(workers, root / "calls.log", kill_after) if kill_after else None
    outputs = [w.communicate()[0] for w in workers]
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for worker, out in zip(workers, outputs):
        if worker.returncode != 0 and worker is not victim:
            raise SystemExit(f"a worker failed:\n{out[-3000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, launched


def timeline(url: str, launched: float, wall: float) -> dict[str, object]:
    """Where a run's wall time went, from the state: each stack's `up` checkpoints
    (start, end) and its run event (which worker). Seconds from the workers' start:
    until the first stack started (start-up), base/main, the apps (first start to last
    end), top/main, and from its end until the last worker exited; per worker, its
    stacks, the time they took, and when it started its first and ended its last."""
    from stackwright.state.postgres import PostgresStateStore, schema_for

    spans: dict[str, tuple[float, float, str]] = {}
    for project in ("base", "apps", "top"):
        with PostgresStateStore(url, schema_for(project)) as store:
            for info in store.list_stacks():
                ups = [cp for cp in store.history(info.name) if cp.kind == "up"]
                worker = next(e.data["worker"] for e in store.events(info.name, kinds=("run",))
                              if e.data["run_id"] == "bench")
                spans[f"{project}/{info.name}"] = (ups[0].started_at - launched, ups[-1].finished_at - launched,
                                                   str(worker).split()[0])
    apps = [span for ref, span in spans.items() if ref.startswith("apps/")]
    workers: dict[str, list[tuple[float, float, str]]] = {}
    for span in spans.values():
        workers.setdefault(span[2], []).append(span)
    base, top = spans["base/main"], spans["top/main"]
    return {"startup_s": round(min(s[0] for s in spans.values()), 2),
            "base_s": round(base[1] - base[0], 3),
            "apps_s": [round(min(a[0] for a in apps), 2), round(max(a[1] for a in apps), 2)],
            "top_s": [round(top[0], 2), round(top[1], 2)], "exit_after_top_s": round(wall - top[1], 2),
            "per_worker": {name: {"stacks": len(mine), "busy_s": round(sum(e - b for b, e, _ in mine), 2),
                                  "first_start_s": round(min(b for b, _, _ in mine), 2),
                                  "last_end_s": round(max(e for _, e, _ in mine), 2)}
                           for name, mine in sorted(workers.items())}}


def kill_one(workers: list[subprocess.Popen[str]], log: Path, after: int) -> subprocess.Popen[str]:
    while True:
        lines = complete_lines(log)
        if len(lines) >= after:
            pid = json.loads(lines[-1])["pid"]
            victim = next(w for w in workers if w.pid == pid)
            victim.kill()
            victim.wait()  # reaped: a zombie still answers kill(pid, 0)
            return victim
        time.sleep(0.01)


def complete_lines(log: Path) -> list[str]:
    """The log's lines, but for one still being written (a reader can see part of
    another process's append)."""
    text = log.read_text() if log.exists() else ""
    return text[:text.rfind("\n") + 1].splitlines()


def check_shard_run(root: Path, url: str, stacks: int) -> None:
    """Counted from the state and the provider-call log: every resource recorded, and
    created exactly once; every stack has one run event, ok."""
    from collections import Counter

    from stackwright.state.postgres import PostgresStateStore, schema_for

    calls = [json.loads(line) for line in (root / "calls.log").read_text().splitlines()]
    creates = Counter(c["urn"] for c in calls if c["op"] == "create")
    expected = 1 + 2 * (stacks - 2) + 1
    assert len(creates) == expected and set(creates.values()) == {1}, creates.most_common(3)
    recorded = 0
    for project in ("base", "apps", "top"):
        with PostgresStateStore(url, schema_for(project)) as store:
            for info in store.list_stacks():
                snapshot = store.snapshot(info.name)
                assert not snapshot.pending, (project, info.name)
                recorded += len(snapshot.resources)
                events = [e for e in store.events(info.name, kinds=("run",)) if e.data["run_id"] == "bench"]
                assert [e.data["status"] for e in events] == ["ok"], (project, info.name, events)
    assert recorded == expected, recorded


def bench_shards(stacks: int = 200, latency: float = 0.05, workers: int = 4) -> dict[str, object]:
    import compileall

    here = Path(__file__).resolve().parent.parent
    compileall.compile_dir(str(here / "src"), quiet=1)
    sys.path.insert(0, str(here / "tests"))
    from pg_server import running_server

    root = Path(tempfile.mkdtemp(prefix="sw-shard-bench-"))
    load = os.getloadavg()[0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with running_server() as server:
            runs, timelines, steal = {}, {}, {}
            plan = [("one", 1, 0), ("many", workers, 0), ("killed", workers, stacks)]
            if cores < workers:
                plan.append(("per_core", cores, 0))
            for name, count, kill_after in plan:
                url = server.create_database()
                folder = shard_workspace(root / name, stacks, latency)
                stolen = stolen_seconds()
                wall, cpu, launched = run_workers(folder, url, count, kill_after)
                steal[name] = round(stolen_seconds() - stolen, 2)
                runs[name] = wall, cpu
                check_shard_run(folder, url, stacks)
                if name in ("one", "many"):
                    timelines[name] = timeline(url, launched, wall)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    (one, one_cpu), (many, many_cpu), (killed, killed_cpu) = runs["one"], runs["many"], runs["killed"]
    ratio = many / (one / workers)
    return {"stacks": stacks, "latency_s": latency, "one_worker_s": round(one, 2),
            f"{workers}_workers_s": round(many, 2),
            "ratio_to_ideal": round(ratio, 3), "target_ratio": SHARD_TARGET, "target_met": ratio <= SHARD_TARGET,
            f"{workers}_workers_one_killed_s": round(killed, 2),
            "each_resource_created_once": True,
            "workers_cpu_s": {"one": round(one_cpu, 2), str(workers): round(many_cpu, 2),
                              f"{workers}_one_killed": round(killed_cpu, 2)},
            "load_average_at_start": round(load, 1), "load_average_at_end": round(os.getloadavg()[0], 1),
            "cpu_stolen_by_the_host_s": steal, "cores": cores,
            **_per_core(runs, cores, workers),
            "timeline_one": timelines["one"], f"timeline_{workers}": timelines["many"]}


def _per_core(runs: dict[str, tuple[float, float]], cores: int, workers: int) -> dict[str, object]:
    """With fewer cores than workers, the same run with one worker per core: CI matrix
    jobs each have a machine of their own, and this shows the scale-out without the
    start-ups of ``workers`` processes sharing ``cores`` cores."""
    if "per_core" not in runs:
        return {}
    wall, cpu = runs["per_core"]
    return {"one_worker_per_core": {"workers": cores, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                    "ratio_to_ideal": round(wall / (runs["one"][0] / cores), 3)}}


def stolen_seconds() -> float:
    """CPU time the hypervisor gave to others while this VM's processes were ready to
    run (Linux ``/proc/stat``, all CPUs); 0 elsewhere. A run during which it grew ran on
    a slower machine than the figures beside it."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def check_selection(out: str) -> None:
    """Exactly the changed stack is selected and previewed, showing one tenant to add."""
    assert f"Selected 1 of {TENANT_STACKS + 4} stacks" in out, out[:2000]
    assert f"tenants/{CHANGED}  config changed: tenants/stacks/{CHANGED}.yaml" in out, out[:2000]
    assert "1 to create" in out, out[-2000:]
    assert "1 stack(s)" in out and "1 ok" in out, out[-2000:]


def main() -> None:
    compile_package()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    chosen = set(sys.argv[1:]) or {"changed", "overhead", "shards"}
    if "changed" in chosen:
        changed = bench_changed()
        print(json.dumps({"workspace_1000_stacks": changed}), flush=True)
        median = changed["changed_since_preview_median_s"]
        assert isinstance(median, float)
        if median > TARGET_S:
            print(f"workspace: run preview --changed-since took {median:.2f}s (target {TARGET_S}s)",
                  file=sys.stderr)
    if "overhead" in chosen:
        print(json.dumps({"run_up_overhead": bench_overhead()}), flush=True)
    if "shards" in chosen:
        print(json.dumps({"run_up_shards": bench_shards()}), flush=True)


if __name__ == "__main__":
    main()
