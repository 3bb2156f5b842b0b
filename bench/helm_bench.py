"""Helm benchmarks (issue 11), part of `make bench`; figures go to bench/RESULTS.md.

1. `render`: cold render of 200 releases of examples/charts/app (empty render cache)
   against 200 × one `helm template` of it ÷ cores, both measured in the same run
   (target ≤ 1.2); then the same program with a warm cache, and the helm calls it made.
2. `preview`: no-op `stackwright preview` of those 200 releases (whole command, median
   of 3) after `up` to the local cluster (target ≤ 1.0 s).
3. `apply500`: `up --parallel 32` of one chart of 500 objects to the local API server:
   wall time against the sum of the server's own request latencies (its
   apiserver_request_duration_seconds_sum for our requests, from /metrics).
4. `help`: `stackwright --help`, whole command, median of 5.

Parts 2 and 3 need the local cluster (`make kube`, then they start it themselves).
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
from typing import Any

from bytecode import compile_package

from workspace_bench import cli

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHART = ROOT / "examples" / "charts" / "app"
CLI = [sys.executable, "-m", "stackwright.cli.main"]
RELEASES = 200

PROGRAM = '''
import stackwright as sw
from stackwright.providers import k8s
from stackwright.providers.k8s import helm

config = sw.Config()
cluster = k8s.Provider("cluster", kubeconfig=config.require_str("kubeconfig"))
k8s.Object("ns", manifest={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
           opts=sw.ResourceOptions(provider=cluster))
for i in range(config.require_int("releases")):
    helm.Chart(f"r{i:03d}", path=config.require_str("chart"), namespace="bench",
               values={"settings": {"TENANT": f"tenant-{i:03d}"}, "ingress": {"host": f"t{i}.example.com"},
                       "annotations": {"stackwright.io/skip-await": "true"}},
               opts=sw.ResourceOptions(provider=cluster))
'''


def helm_path() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from stackwright.providers.k8s.helm.binary import find_helm

    return find_helm(Path(tempfile.mkdtemp())).path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_helm_template(helm: str, runs: int = 10) -> tuple[float, float]:
    """Median wall time and mean CPU time of one `helm template` of the example chart."""
    cpu = children_cpu()
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([helm, "template", "r000", str(CHART), "--namespace", "bench", "--include-crds",
                        "--skip-tests"], check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), (children_cpu() - cpu) / runs


def make_project(root: Path, releases: int, kubeconfig: str, chart: Path = CHART, program: str = PROGRAM) -> Path:
    project = root / f"helm-{releases}"
    project.mkdir(parents=True)
    (project / "stackwright.yaml").write_text("name: helmbench\nmain: __main__.py\n")
    (project / "__main__.py").write_text(program)
    (project / "stacks").mkdir()
    (project / "stacks" / "dev.yaml").write_text(json.dumps({"config": {
        "releases": releases, "chart": str(chart), "kubeconfig": kubeconfig}}))
    cli(project, "stack", "init", "dev")
    return project


def run_program(project: Path) -> tuple[float, int]:
    """Wall time of running the program in this process (renders included), and the
    number of objects declared."""
    seconds, graph = program_graph(project)
    return seconds, len(graph.resources)


def program_graph(project: Path) -> tuple[float, Any]:
    """Wall time of running the program of stack ``dev`` in this process, and its graph."""
    from stackwright.program.project import load_project
    from stackwright.program.runner import run_program as run
    from stackwright.model.context import ConfigSource

    loaded = load_project(project)
    data = json.loads((project / "stacks" / "dev.yaml").read_text())["config"]
    cwd = os.getcwd()
    os.chdir(project)
    try:
        start = time.perf_counter()
        graph = run(loaded, "dev", ConfigSource(data=data, file="stacks/dev.yaml"))
        return time.perf_counter() - start, graph
    finally:
        os.chdir(cwd)


def bench_render(root: Path) -> dict[str, float]:
    helm = helm_path()
    project = make_project(root / "render", RELEASES, kubeconfig="unused")
    cores = os.cpu_count() or 1
    one, one_cpu = one_helm_template(helm)
    shutil.rmtree(project / ".stackwright" / "cache", ignore_errors=True)
    cpu = children_cpu()
    cold, objects = run_program(project)
    helm_cpu = children_cpu() - cpu
    warm, _ = run_program(project)
    bound = RELEASES * one / cores
    return {"releases": RELEASES, "objects": objects, "cores": cores, "one_helm_template_s": round(one, 4),
            "bound_s": round(bound, 3), "cold_render_s": round(cold, 3), "ratio": round(cold / bound, 3),
            "helm_cpu_ratio": round(helm_cpu / (RELEASES * one_cpu), 3), "warm_program_s": round(warm, 3),
            "load_average": round(os.getloadavg()[0], 1)}


BIG_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: many\nversion: 1.0.0\n",
    "templates/configmaps.yaml": (
        "{{- range $i := until (int .Values.count) }}\n---\napiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: {{ printf \"cm-%03d\" $i }}\ndata:\n  index: {{ $i | quote }}\n{{- end }}\n"),
}

APPLY_PROGRAM = '''
import stackwright as sw
from stackwright.providers import k8s
from stackwright.providers.k8s import helm

config = sw.Config()
cluster = k8s.Provider("cluster", kubeconfig=config.require_str("kubeconfig"))
ns = k8s.Object("ns", manifest={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-apply"}},
                opts=sw.ResourceOptions(provider=cluster))
helm.Chart("many", path=config.require_str("chart"), namespace="bench-apply",
           values={"count": config.require_int("releases")},
           opts=sw.ResourceOptions(provider=cluster, depends_on=[ns]))
'''


def server_latency_sum(kubeconfig: str) -> tuple[float, float]:
    """Sum and count of apiserver_request_duration_seconds over the requests for
    ConfigMaps the server has served so far (only the benchmark touches ConfigMaps),
    read from its /metrics with the admin credentials."""
    import base64
    import ssl
    import urllib.request

    import yaml

    config = yaml.safe_load(Path(kubeconfig).read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    files = {}
    for key in ("client-certificate-data", "client-key-data"):
        path = Path(tempfile.mkstemp()[1])
        path.write_bytes(base64.b64decode(user[key]))
        files[key] = str(path)
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    context.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
    with urllib.request.urlopen(f"{cluster['server']}/metrics", context=context, timeout=30) as response:
        text = response.read().decode()
    def total(metric: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(metric + "{") and 'resource="configmaps"' in line)

    return total("apiserver_request_duration_seconds_sum"), total("apiserver_request_duration_seconds_count")


def bench_apply(root: Path, kubeconfig: str, objects: int = 500) -> dict[str, float]:
    chart = root / "many"
    for name, text in BIG_CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    project = make_project(root, objects, kubeconfig, chart=chart, program=APPLY_PROGRAM)
    cli(project, "preview")
    before, count_before = server_latency_sum(kubeconfig)
    wall, _ = cli(project, "up", "--yes", "--parallel", "32")
    after, count_after = server_latency_sum(kubeconfig)
    server, requests = after - before, count_after - count_before
    cli(project, "destroy", "--yes", "--parallel", "32")
    return {"objects": objects, "parallel": 32, "up_wall_s": round(wall, 3),
            "server_requests": int(requests), "server_latency_sum_s": round(server, 3),
            "wall_over_server_sum": round(wall / server, 3), "load_average": round(os.getloadavg()[0], 1)}


def bench_noop_preview(root: Path, kubeconfig: str) -> dict[str, float]:
    project = make_project(root / "noop", RELEASES, kubeconfig)
    cli(project, "up", "--yes", "--parallel", "32")
    walls, cpus = [], []
    for _ in range(3):
        cpu = children_cpu()
        wall, out = cli(project, "preview")
        cpus.append(children_cpu() - cpu)
        assert "No changes" in out, out
        walls.append(wall)
    cli(project, "destroy", "--yes", "--parallel", "32")
    return {"releases": RELEASES, "objects": RELEASES * 6, "preview_median_s": round(statistics.median(walls), 3),
            "preview_min_s": round(min(walls), 3), "preview_cpu_median_s": round(statistics.median(cpus), 3),
            "load_average": round(os.getloadavg()[0], 1)}


def local_cluster(root: Path) -> tuple[Path, str] | None:
    """A private local cluster for parts 2 and 3, or None when its binaries are not built."""
    from stackwright.providers.k8s import localcluster

    if localcluster.missing_tools():
        print("local cluster binaries not built (make kube-tools): skipping preview and apply500", flush=True)
        return None
    state_dir = root / "cluster"
    return state_dir, str(localcluster.start(state_dir).kubeconfig)


def bench_help() -> dict[str, float]:
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([*CLI, "--help"], check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    return {"help_median_s": round(statistics.median(walls), 3), "help_min_s": round(min(walls), 3)}


def main() -> None:
    compile_package()
    only = set(sys.argv[1:])
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with Python's default bytecode cache
    root = Path(tempfile.mkdtemp(prefix="sw-helm-bench-"))
    results: dict[str, object] = {}
    try:
        if not only or "help" in only:
            results["help"] = bench_help()
            print(json.dumps(results["help"]), flush=True)
        if not only or "render" in only:
            results["render_200"] = bench_render(root)
            print(json.dumps(results["render_200"]), flush=True)
        cluster = local_cluster(root) if not only or only & {"preview", "apply500"} else None
        try:
            if cluster and (not only or "apply500" in only):
                results["apply_500"] = bench_apply(root, cluster[1])
                print(json.dumps(results["apply_500"]), flush=True)
            if cluster and (not only or "preview" in only):
                results["noop_preview_200"] = bench_noop_preview(root, cluster[1])
                print(json.dumps(results["noop_preview_200"]), flush=True)
        finally:
            if cluster:
                from stackwright.providers.k8s import localcluster

                localcluster.stop(cluster[0])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
