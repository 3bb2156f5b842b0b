"""Preview at scale and the memory of a big first `up` (issue 14, points 1 and 2).

Run: `.venv/bin/python bench/scale_bench.py` (also `bench/run.py scale`).

Prints, for no-op `stackwright preview` of the synthetic program at 1,000, 10,000 and
50,000 resources (whole command, a subprocess each, median of RUNS): wall seconds,
CPU seconds (user+sys of the child, what a busy machine disturbs least) and µs per
resource of each; then the peak RSS (ru_maxrss of the child) of the first `up` of
50,000 resources. Each figure is printed beside its target, with the load average, since
wall figures on a loaded machine say little. The package's bytecode is compiled first
(`compileall`): with PYTHONDONTWRITEBYTECODE set, every command would compile it again.

SCALE_RUNS and SCALE_SIZES (e.g. `SCALE_SIZES=200,400 SCALE_RUNS=1` for a quick try) change
the runs and the sizes; the first up of the largest size is the one whose memory is printed.

Targets: 10,000 resources ≤ 0.35 s; 50,000 ≤ 1.5 s with µs/resource flat from 1,000 to
50,000; first `up` of 50,000 peaks at ≤ 250 MB.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bytecode import compile_package

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import make_project, run_timed  # noqa: E402

RUNS = int(os.environ.get("SCALE_RUNS", "5"))
SIZES = tuple(int(n) for n in os.environ.get("SCALE_SIZES", "1000,10000,50000").split(","))
TARGETS = {10_000: 0.35, 50_000: 1.5}
RSS_TARGET_MB = 250


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def noop_previews(project: Path, count: int, smallest: dict[str, object] | None) -> dict[str, object]:
    """Median previews; beside the smallest size's, the CPU each further resource cost
    (what "flat per resource" means once the command's fixed start-up is set apart)."""
    walls, cpus = [], []
    for _ in range(RUNS):
        wall, out, _, cpu = run_timed(project, "preview")
        assert "No changes" in out, out
        walls.append(wall)
        cpus.append(cpu)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    result: dict[str, object] = {
        "resources": count, "runs": RUNS, "wall_median_s": round(wall, 3), "wall_min_s": round(min(walls), 3),
        "wall_max_s": round(max(walls), 3), "cpu_median_s": round(cpu, 3),
        "wall_us_per_resource": round(wall / count * 1e6, 1), "cpu_us_per_resource": round(cpu / count * 1e6, 1),
        "load_average": load(),
    }
    if smallest is not None:
        base_cpu, base_count = float(smallest["cpu_median_s"]), int(smallest["resources"])  # type: ignore[arg-type]
        result["marginal_cpu_us_per_resource"] = round((cpu - base_cpu) / (count - base_count) * 1e6, 1)
    if count in TARGETS:
        result["target_s"] = TARGETS[count]
        result["met_by_wall"] = wall <= TARGETS[count]
    return result


def main() -> None:
    compile_package()
    root = Path(tempfile.mkdtemp(prefix="sw-scale-"))
    smallest: dict[str, object] | None = None
    try:
        for count in SIZES:
            project = make_project(root, count, 0.0)
            wall, _, rss_kib, cpu = run_timed(project, "up", "--yes", "--parallel", "64")
            if count == max(SIZES):
                rss = rss_kib / 1024
                print(json.dumps({"first_up_resources": count, "peak_rss_mb": round(rss, 1),
                                  "target_mb": RSS_TARGET_MB, "met": rss <= RSS_TARGET_MB,
                                  "up_wall_s": round(wall, 2), "up_cpu_s": round(cpu, 2),
                                  "load_average": load()}), flush=True)
            previews = noop_previews(project, count, smallest)
            smallest = smallest or previews
            print(json.dumps({"noop_preview": previews}), flush=True)
            shutil.rmtree(project, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
