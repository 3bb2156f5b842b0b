"""`stackwright gitops render` of 1,000 tenants (issue 12), part of `make bench`;
figures go to bench/RESULTS.md.

Each tenant is a ``Tenant`` (namespace, service account, Role and RoleBinding, quota,
limits, two network policies, a disruption budget) with its Helm release of
examples/charts/app and its own values: 1,000 namespaces, about 16,000 objects, one
file each. The first render fills the Helm render cache (cold); the target is the warm
render (the whole command, a subprocess, median of 3), which rewrites no file; its
CPU time (user + system) is reported too, since a loaded machine stretches the wall.
Usage: bench/gitops_bench.py [TENANTS]
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compile_package

from helm_bench import CHART, CLI

TENANTS = 1000

PROGRAM = '''
import stackwright as sw
from stackwright.components import Tenant

config = sw.Config()
for entry in config.require_object("tenants", list):
    Tenant(entry, chart=config.require_str("chart"), values={"autoscaling": {"enabled": False}})
'''


def make_project(root: Path, tenants: int) -> Path:
    project = root / "platform"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (project / "stackwright.yaml").write_text(json.dumps({
        "name": "tenants", "main": "__main__.py",
        "gitops": {"repo_url": "https://git.example.com/acme/deploy.git"}}))
    (project / "__main__.py").write_text(PROGRAM)
    (project / "stacks").mkdir()
    entries = [{"name": f"t{i:04d}", "size": "small", "values": {"settings": {"CUSTOMER": f"customer-{i}"}}}
               for i in range(tenants)]
    (project / "stacks" / "dev.yaml").write_text(json.dumps({"config": {"chart": str(CHART), "tenants": entries}}))
    cli(project, "stack", "init", "dev")
    return project


def cli(project: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([*CLI, *args], cwd=project, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"stackwright {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, done.stdout


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench(tenants: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="sw-gitops-bench-"))
    project = make_project(root, tenants)
    out = root / "deploy"
    cold, said = cli(project, "gitops", "render", "--out", str(out))
    warm, cpu = [], []
    for _ in range(3):
        before = children_cpu()
        warm.append(cli(project, "gitops", "render", "--out", str(out))[0])
        cpu.append(children_cpu() - before)
    files = sum(1 for _ in out.rglob("*.yaml"))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"tenants": tenants, "files": files, "cold_render_s": round(cold, 2),
            "warm_render_s": round(statistics.median(warm), 2), "warm_runs_s": [round(w, 2) for w in warm],
            "warm_cpu_s": round(statistics.median(cpu), 2), "warm_target_s": 10.0,
            "load_average": round(os.getloadavg()[0], 1),
            "peak_rss_mb": round(peak), "first_render": said.strip()}


if __name__ == "__main__":
    compile_package()
    print(json.dumps(bench(int(sys.argv[1]) if len(sys.argv) > 1 else TENANTS), indent=2))
