"""Stackwright beside a peer (issue 14, point 6): the same synthetic graph through the
Pulumi Python SDK under its mocks and through `stackwright preview`, interleaved.

For each size (1,000 and 10,000 resources) and each of `runs` rounds, one whole no-op
`stackwright preview` (the stack was applied once, unmeasured) and one whole Pulumi run of
bench/peers/pulumi_synthetic.py (process start, imports, the program, every output
settled) run back to back, so machine noise hits both alike. Printed: median wall and CPU
seconds of each and the ratio Pulumi ÷ Stackwright. The Pulumi figure is a lower bound
for a Pulumi preview: its engine and provider plugins are replaced by the mocks.

The target is a ratio of at least 20 at 10,000 resources; the script exits 1 below it.

    .venv/bin/python bench/peers/peers_bench.py [runs] [sizes...]

Needs the `peers` extra (`pip install -e '.[peers]'`, which `make bench` does).
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bytecode import compile_package  # noqa: E402
from run import make_project, run_timed  # noqa: E402

PULUMI_PROGRAM = HERE / "pulumi_synthetic.py"
TARGET_AT_10K = 20.0


def pulumi_run(count: int) -> tuple[float, float]:
    """One whole Pulumi process: (wall seconds, CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(PULUMI_PROGRAM), str(count)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"the Pulumi program failed:\n{done.stdout}\n{done.stderr}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def stackwright_run(project: Path) -> tuple[float, float]:
    """One whole no-op `stackwright preview`: (wall seconds, CPU seconds)."""
    wall, out, _, cpu = run_timed(project, "preview")
    if "No changes" not in out:
        raise SystemExit(f"the preview was not a no-op:\n{out}")
    return wall, cpu


def side_by_side(root: Path, count: int, runs: int) -> dict[str, object]:
    project = make_project(root / f"sw-{count}", count, 0.0)
    run_timed(project, "up", "--yes", "--parallel", "64")
    sw: list[tuple[float, float]] = []
    peer: list[tuple[float, float]] = []
    for turn in range(runs):
        pair = [lambda: sw.append(stackwright_run(project)), lambda: peer.append(pulumi_run(count))]
        for step in pair if turn % 2 == 0 else reversed(pair):
            step()
    sw_wall = statistics.median(w for w, _ in sw)
    peer_wall = statistics.median(w for w, _ in peer)
    sw_cpu = statistics.median(c for _, c in sw)
    peer_cpu = statistics.median(c for _, c in peer)
    return {"resources": count, "runs": runs,
            "stackwright_preview_wall_s": round(sw_wall, 3), "stackwright_preview_cpu_s": round(sw_cpu, 3),
            "pulumi_mocks_wall_s": round(peer_wall, 3), "pulumi_mocks_cpu_s": round(peer_cpu, 3),
            "ratio_wall": round(peer_wall / sw_wall, 1), "ratio_cpu": round(peer_cpu / sw_cpu, 1)}


def pulumi_version() -> str:
    """The installed Pulumi SDK's version; without the `peers` extra, a one-line exit
    saying how to install it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pulumi")
    except PackageNotFoundError:
        raise SystemExit("the Pulumi SDK is not installed: `.venv/bin/pip install -e '.[peers]'` "
                         "(or `make bench`, which installs it)") from None


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    sizes = [int(n) for n in sys.argv[2:]] or [1_000, 10_000]
    peer = pulumi_version()
    bytecode = compile_package()
    root = Path(tempfile.mkdtemp(prefix="sw-peers-"))
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "pulumi": peer, "bytecode": bytecode,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        for count in sizes:
            results[f"at_{count}"] = figures = side_by_side(root, count, runs)
            print(json.dumps(figures), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))
    at_10k = results.get("at_10000")
    if isinstance(at_10k, dict):
        verdict = "met" if at_10k["ratio_wall"] >= TARGET_AT_10K else "NOT MET"
        print(f"Pulumi ÷ Stackwright at 10,000 resources: {at_10k['ratio_wall']} × wall "
              f"(target ≥ {TARGET_AT_10K:g}: {verdict})")
        return 0 if verdict == "met" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
