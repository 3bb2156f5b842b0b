"""Engine benchmarks (`make bench`). Prints figures; RESULTS.md records them.

1. no-op `stackwright preview` of a 10,000-resource program (whole command, median of 5),
   and the same with 1,000 secret values against without (median of 7 each, alternating)
2. `up` of a 2,000-resource DAG at 50 ms per operation, --parallel 64, against the lower
   bound max(critical path, total work / parallelism); median of 5 runs, spread printed
3. engine overhead per resource for planning and for apply bookkeeping (latency 0;
   apply: wall and CPU time of all threads from the confirmation to the end of `up`,
   target <= 150 us wall per resource on a quiet machine), and peak RSS of a
   10,000-resource `up` and preview
4. (workspace_bench.py) `run preview --changed-since HEAD~1` in a workspace of 1,000
   stacks where one tenant stack's config changed (whole command, median of 3)
5. (helm_bench.py) Helm: cold render of 200 releases, no-op preview of them, apply of a
   500-object chart, `stackwright --help`
6. (gitops_bench.py) `gitops render` of 1,000 tenants, cold and warm
7. (web_bench.py) the web view: the stack page of a 10,000-resource stack with 1,000
   checkpoints, the stacks page of a 1,000-stack workspace (server time)
8. (state_bench.py) `up` of 2,000 resources with the state in S3 (local emulator) against
   the same with the state in SQLite
9. (scale_bench.py) no-op preview at 1,000, 10,000 and 50,000 resources (µs per
   resource, wall and CPU) and the peak RSS of the first `up` of 50,000
10. (peers/peers_bench.py) the same synthetic graph through the Pulumi Python SDK under its
   mocks beside `stackwright preview`, at 1,000 and 10,000 resources; fails below 20 x
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compile_package

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "stackwright.cli.main"]


def make_project(root: Path, count: int, latency: float, secrets: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    project = root / f"synthetic-{count}" if not secrets else root / f"synthetic-{count}-{secrets}-secrets"
    shutil.copytree(HERE / "programs" / "synthetic", project)
    (project / "stackwright.yaml").write_text("name: synthetic\nmain: __main__.py\n")
    (project / "stacks").mkdir()
    (project / "stacks" / "dev.yaml").write_text(
        f"config:\n  count: {count}\n  secrets: {secrets}\n  synthetic:\n    latency: {latency}\n")
    run(project, "stack", "init", "dev")
    return project


def run(project: Path, *args: str) -> tuple[float, str, int]:
    """Run the CLI; returns (wall seconds, stdout, child peak RSS in KiB)."""
    wall, out, rss, _ = run_timed(project, *args)
    return wall, out, rss


def run_timed(project: Path, *args: str) -> tuple[float, str, int, float]:
    """Run the CLI; returns (wall seconds, stdout, child peak RSS in KiB, child CPU
    seconds: what a machine busy with other work disturbs least)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([*CLI, *args], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "STACKWRIGHT_USER": "bench"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"stackwright {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, done.stdout, max(after.ru_maxrss, before.ru_maxrss), cpu


def bench_noop_preview(root: Path) -> dict[str, float]:
    project = make_project(root, 10_000, 0.0)
    up_wall, _, up_rss = run(project, "up", "--yes", "--parallel", "64")
    walls = []
    for _ in range(5):
        wall, out, rss = run(project, "preview")
        assert "No changes" in out, out
        walls.append(wall)
    return {"resources": 10_000, "preview_median_s": statistics.median(walls),
            "preview_min_s": min(walls), "up_latency0_s": up_wall, "peak_rss_mb": up_rss / 1024}


def bench_secret_preview(root: Path, count: int = 10_000, secrets: int = 1_000, runs: int = 7) -> dict[str, float]:
    """No-op preview of ``count`` resources, ``secrets`` of them with a secret input
    (encrypted in state with the stack's local key), against the same without secrets;
    previews alternate between the two so machine noise hits both alike. Wall and CPU
    time, medians."""
    plain = make_project(root / "plain", count, 0.0)
    secret = make_project(root / "secret", count, 0.0, secrets)
    for project in (plain, secret):
        run(project, "up", "--yes", "--parallel", "64")
    walls: dict[Path, list[float]] = {plain: [], secret: []}
    cpus: dict[Path, list[float]] = {plain: [], secret: []}
    for _ in range(runs):
        for project in (plain, secret):
            wall, out, _, cpu = run_timed(project, "preview")
            assert "No changes" in out, out
            walls[project].append(wall)
            cpus[project].append(cpu)
    wall_ratio = statistics.median(walls[secret]) / statistics.median(walls[plain])
    cpu_ratio = statistics.median(cpus[secret]) / statistics.median(cpus[plain])
    return {"resources": count, "secret_values": secrets,
            "preview_median_s": statistics.median(walls[plain]),
            "preview_with_secrets_median_s": statistics.median(walls[secret]), "wall_ratio": wall_ratio,
            "preview_cpu_median_s": statistics.median(cpus[plain]),
            "preview_with_secrets_cpu_median_s": statistics.median(cpus[secret]), "cpu_ratio": cpu_ratio}


def bench_up_dag(root: Path, count: int = 2000, latency: float = 0.05, parallel: int = 64) -> dict[str, float]:
    sys.path.insert(0, str(HERE.parent / "src"))
    from stackwright.operations.session import open_session
    from stackwright.engine.apply import ApplyOptions, action_graph
    from stackwright.engine.events import EventSink
    from stackwright.operations.update import up
    from stackwright.program.project import load_project

    project_dir = make_project(root, count, latency)
    project = load_project(project_dir)
    cwd = os.getcwd()
    os.chdir(project_dir)
    try:
        session = open_session(project, "dev", "bench")
        desired = session.run_program()
        timings: dict[str, float] = {}

        def confirm(plan: object) -> bool:
            graph = action_graph(plan)  # type: ignore[arg-type]
            timings["critical_path"] = _critical_path(graph) * latency
            timings["work_bound"] = len(graph.deps) * latency / parallel
            timings["apply_start"] = time.perf_counter()
            return True

        start = time.perf_counter()
        outcome = up(session, options=ApplyOptions(parallel=parallel), sink=EventSink(),
                     confirm=confirm, desired=desired)
        end = time.perf_counter()
        session.close()
    finally:
        os.chdir(cwd)
    assert outcome.ok, outcome.result
    bound = max(timings["critical_path"], timings["work_bound"])
    apply_wall = end - timings["apply_start"]
    return {"resources": count, "latency_s": latency, "parallel": parallel,
            "critical_path_s": timings["critical_path"], "work_bound_s": timings["work_bound"],
            "lower_bound_s": bound, "apply_wall_s": apply_wall, "ratio": apply_wall / bound,
            "up_wall_incl_plan_s": end - start}


def bench_up_dag_repeated(root: Path, runs: int = 5) -> dict[str, object]:
    """The DAG apply ``runs`` times on fresh state: the median run, and the spread."""
    results = [bench_up_dag(root / f"run-{n}") for n in range(runs)]
    ratios = sorted(r["ratio"] for r in results)
    median = sorted(results, key=lambda r: r["ratio"])[runs // 2]
    return {**median, "runs": runs, "ratio_median": ratios[runs // 2],
            "ratio_min": ratios[0], "ratio_max": ratios[-1]}


def _critical_path(graph: object) -> int:
    deps = graph.deps  # type: ignore[attr-defined]
    depth: dict[object, int] = {}
    for vertex in graph.topological_order():  # type: ignore[attr-defined]
        depth[vertex] = 1 + max((depth[d] for d in deps.get(vertex, ())), default=0)
    return max(depth.values(), default=0)


def bench_overhead(root: Path, count: int = 10_000) -> dict[str, float]:
    """Per-resource engine cost with a zero-latency provider, in process."""
    from stackwright.engine.apply import ApplyOptions
    from stackwright.engine.events import EventSink
    from stackwright.operations.session import open_session
    from stackwright.operations.update import up
    from stackwright.plan.planner import make_plan
    from stackwright.program.project import load_project

    project_dir = make_project(root / "overhead", count, 0.0)
    project = load_project(project_dir)
    session = open_session(project, "dev", "bench")
    t0 = time.perf_counter()
    desired = session.run_program()
    t1 = time.perf_counter()
    make_plan(desired, session.store.snapshot("dev"), session.providers)
    t2 = time.perf_counter()
    marks: dict[str, float] = {}

    def confirm(plan: object) -> bool:
        marks["apply"] = time.perf_counter()
        marks["apply_cpu"] = time.process_time()
        return True

    up(session, options=ApplyOptions(parallel=64), sink=EventSink(), confirm=confirm, desired=desired)
    t3 = time.perf_counter()
    apply_cpu = time.process_time() - marks["apply_cpu"]
    snapshot_start = time.perf_counter()
    snapshot = session.store.snapshot("dev")
    t4 = time.perf_counter()
    make_plan(desired, snapshot, session.providers)
    t5 = time.perf_counter()
    session.close()
    return {"resources": count,
            "program_us_per_resource": (t1 - t0) / count * 1e6,
            "plan_create_us_per_resource": (t2 - t1) / count * 1e6,
            "apply_us_per_resource": (t3 - marks["apply"]) / count * 1e6,
            "apply_cpu_us_per_resource": apply_cpu / count * 1e6,
            "apply_target_us_per_resource": 150,
            "load_average": os.getloadavg()[0],
            "snapshot_us_per_resource": (t4 - snapshot_start) / count * 1e6,
            "plan_noop_us_per_resource": (t5 - t4) / count * 1e6}


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main() -> None:
    compile_package()
    only = set(sys.argv[1:])
    root = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    results: dict[str, object] = {"machine": machine()}
    try:
        if not only or "preview" in only:
            results["noop_preview_10k"] = bench_noop_preview(root)
            print(json.dumps(results["noop_preview_10k"]), flush=True)
        if not only or "secrets" in only:
            results["noop_preview_10k_1k_secrets"] = bench_secret_preview(root)
            print(json.dumps(results["noop_preview_10k_1k_secrets"]), flush=True)
        if not only or "dag" in only:
            results["up_dag_2000"] = bench_up_dag_repeated(root)
            print(json.dumps(results["up_dag_2000"]), flush=True)
        if not only or "overhead" in only:
            results["overhead_10k"] = bench_overhead(root)
            print(json.dumps(results["overhead_10k"]), flush=True)
        for part in ("aws", "helm", "state", "workspace", "gitops", "web", "scale"):
            script = HERE / f"{part}_bench.py"
            if (not only or part in only) and script.exists():
                subprocess.run([sys.executable, str(script)], check=True)
        if not only or "peers" in only:
            subprocess.run([sys.executable, str(HERE / "peers" / "peers_bench.py")], check=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
