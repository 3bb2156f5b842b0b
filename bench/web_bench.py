"""Web view benchmarks: `python bench/web_bench.py [stack] [stacks]` (both by default).

stack: one stack of 10,000 resources (in 100 components) with 1,000 checkpoints,
  written through the state store's own API (the same rows `up` writes: the first
  checkpoint records every resource, each later one changes one resource). `stackwright
  serve` runs on it; the figure is the server time of the stack page
  (`/stacks/bench/dev`, first page of 200 resources and 50 checkpoints), from the
  `Server-Timing` header the app adds (routing, state reads, rendering; wall time, and
  the server process's CPU time beside it, which the machine's load moves less), median of 7
  requests after a first one (whose time is printed too: it decodes the stack's state,
  which the view then keeps per state serial); the client's wall time is printed beside.
  Target: <= 300 ms.
stacks: a workspace of 1,000 trivial stacks (bench/workspace_bench.py's), applied
  with `stackwright run up --all --yes`; the figure is the server time of the stacks
  page (`/`) of `stackwright serve` at the workspace root, median of 7 after a warm-up.
  Target: <= 500 ms.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests"), str(HERE.parent / "tests" / "web")]

from web_server import Server  # noqa: E402
from workspace_bench import cli, trivial_workspace  # noqa: E402

from bytecode import compile_package  # noqa: E402

CLI = [sys.executable, "-m", "stackwright.cli.main"]
RESOURCES = 10_000
COMPONENTS = 100
CHECKPOINTS = 1_000
STACK_TARGET_MS = 300.0
STACKS_TARGET_MS = 500.0
REQUESTS = 7

PROGRAM = "import stackwright as sw\n"


def big_stack(root: Path) -> Path:
    """A project whose stack `dev` holds RESOURCES resources and CHECKPOINTS checkpoints."""
    from stackwright.operations.session import open_store
    from stackwright.program.project import load_project
    from stackwright.state.records import Change, ResourceState

    project_root = root / "bench"
    (project_root / "stacks").mkdir(parents=True)
    (project_root / "stackwright.yaml").write_text("name: bench\nmain: __main__.py\n")
    (project_root / "__main__.py").write_text(PROGRAM)
    (project_root / "stacks" / "dev.yaml").write_text("config: {}\n")
    cli(project_root, "stack", "init", "dev")
    store = open_store(load_project(project_root), "dev")
    try:
        writer = store.begin("dev", "up", "bench")
        with writer.batch():
            for n in range(RESOURCES):
                record = _resource(n, 0)
                writer.record_resource(record, Change(record.urn, record.type, "create"))
        writer.finish("succeeded", {"count": RESOURCES})
        for number in range(1, CHECKPOINTS):
            writer = store.begin("dev", "up", "bench")
            record = _resource(number % RESOURCES, number)
            writer.record_resource(record, Change(record.urn, record.type, "update",
                                                  [{"path": "size", "kind": "change", "old": 0, "new": number}]))
            writer.finish("succeeded", {"count": RESOURCES})
    finally:
        store.close()
    return project_root


def _resource(n: int, size: int) -> object:
    from stackwright.state.records import ResourceState

    component = f"dev::bench::bench:Group::group-{n % COMPONENTS:03d}"
    urn = f"dev::bench::synthetic:Thing::group-{n % COMPONENTS:03d}$thing-{n:05d}"
    return ResourceState(urn=urn, type="synthetic:Thing", id=f"thing-{n:05d}",
                         inputs={"size": size, "label": f"label {n}", "ref": ""},
                         outputs={"value": f"value-{n}"}, parent=component)


def timing(response: httpx.Response) -> dict[str, float]:
    """The app's ``Server-Timing`` entries (``app``: wall, ``cpu``: process CPU), in ms."""
    entries = (part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
    return {name: float(value) for name, value in entries}


def timed(url: str) -> dict[str, object]:
    """Median server time (Server-Timing) and client wall time of REQUESTS GETs."""
    server, cpu, wall = [], [], []
    with httpx.Client(timeout=120) as client:
        first = client.get(url)
        first.raise_for_status()
        cold = timing(first)["app"]
        for _ in range(REQUESTS):
            started = time.perf_counter()
            response = client.get(url)
            wall.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            server.append(timing(response)["app"])
            cpu.append(timing(response)["cpu"])
    return {"first_request_server_ms": round(cold, 1),
            "server_ms_median": round(statistics.median(server), 1), "server_ms_min": round(min(server), 1),
            "server_cpu_ms_median": round(statistics.median(cpu), 1),
            "wall_ms_median": round(statistics.median(wall), 1), "bytes": len(response.content)}


def served(folder: Path, page: str) -> dict[str, object]:
    """The page's figures, and its JSON twin's under "api", from `stackwright serve` in ``folder``."""
    server = Server(folder)
    try:
        result = timed(f"{server.url}{page}")
        result["api"] = timed(f"{server.url}/api{'/stacks' if page == '/' else page}")
    finally:
        server.stop()
    return result


def bench_stack() -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="sw-web-bench-"))
    try:
        started = time.perf_counter()
        project = big_stack(root)
        setup = time.perf_counter() - started
        result = served(project, "/stacks/bench/dev")
        return {"resources": RESOURCES, "checkpoints": CHECKPOINTS, "setup_s": round(setup, 1),
                **result, "target_ms": STACK_TARGET_MS}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_stacks(count: int = 1000) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="sw-web-bench-"))
    try:
        workspace = trivial_workspace(root / "ws", count)
        setup, _ = cli(workspace, "run", "up", "--all", "--yes")
        result = served(workspace, "/")
        return {"stacks": count, "setup_run_up_all_s": round(setup, 1), **result, "target_ms": STACKS_TARGET_MS}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(names: list[str]) -> None:
    compile_package()
    chosen = names or ["stack", "stacks"]
    out: dict[str, object] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                              f"load {os.getloadavg()[0]:.1f}", "python": platform.python_version()}
    for name in chosen:
        out[name] = {"stack": bench_stack, "stacks": bench_stacks}[name]()
        print(json.dumps({name: out[name]}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
