"""AWS benchmarks against a local cloud this script starts itself.

    python bench/aws_bench.py [platform] [aws500] [--direct]

(a) ``platform``: the dev stack of examples/platform (42 resources): `up` wall time,
    no-op `preview` wall time (median of 3), `refresh` (median of 5), then `destroy`.
    The refresh figure is AWS calls per resource: target <= 1.2 (issue 14, point 5; it
    was 1.81), with its wall and CPU time (user+sys of the CLI process) and the load
    average beside them. Only the refresh:

        python bench/aws_bench.py platform

    prints ``refresh: N calls for 42 resources = X per resource (target <= 1.2)``.
(b) ``aws500``: bench/programs/aws500 (100 each of buckets, topics, roles, tables and
    security groups in one VPC: 501 resources): `up`, no-op `preview` (median of 3),
    one `refresh`, `destroy`.

The package's bytecode is compiled first (``compileall``): with PYTHONDONTWRITEBYTECODE
set, every command would otherwise compile it again. Every command is the real CLI in a subprocess, started through a thin wrapper
(``--hooked-cli``) that times each provider operation (``ProviderCalls.run``), counts
boto3 calls per resource type (a botocore ``before-call`` hook) and times boto3 client
construction. The stack's endpoint is a counting HTTP proxy in front of the emulator (no
faults), which records each request's in-flight interval. Reported per command:

* ``api_calls``, ``calls_per_resource`` and ``calls_per_resource_by_type``;
* ``emulator_busy_s``: time at least one HTTP request was in flight (union of intervals);
  ``mean_in_flight`` = sum of request times / that;
* ``provider_busy_s``: time at least one provider operation was running; beyond the
  emulator's share it is boto3's client side (building clients, signing, parsing) and
  provider waits (polling until a table is ACTIVE...);
* ``engine_s = wall - provider_busy_s``: time no provider operation ran at all - process
  start, imports, running the program, planning, state commits not overlapped by calls.

``--direct`` also runs (b)'s `up` and `destroy` straight against the emulator, to show
what the proxy itself adds. Prints one JSON line per scenario, then a human summary.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from aws_proxy import PassThroughProxy, serving  # noqa: E402
from stackwright.providers.aws import localcloud  # noqa: E402

from bytecode import compile_package

CLI = [sys.executable, "-m", "stackwright.cli.main"]
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
ID_LIKE = re.compile(r"[0-9a-f]{8,}|[A-Z0-9]{12,}|%[0-9A-F]{2}")


# --- a counting proxy -------------------------------------------------------------------


class CountingProxy(PassThroughProxy):
    """Forwards every request to the emulator and records (start, end, service, operation)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, timeout=300)
        self.lock = threading.Lock()
        self.records: list[tuple[float, float, str, str]] = []

    def observe(self, service: str, method: str, path: str, headers: Any, body: bytes,
                start: float, end: float) -> None:
        with self.lock:
            self.records.append((start, end, service, operation_of(service, method, path, headers, body)))

    def window(self, start: float, end: float) -> list[tuple[float, float, str, str]]:
        with self.lock:
            return [r for r in self.records if r[0] >= start and r[1] <= end]


def operation_of(service: str, method: str, path: str, headers: Any, body: bytes) -> str:
    """A name for the call: the JSON target, the query Action, or the REST method and
    path pattern (S3: ``PUT /{bucket}?tagging``)."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        return parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
    split = urlsplit(path)
    sub = "?" + ",".join(sorted(k for k in parse_qs(split.query, keep_blank_values=True))) if split.query else ""
    segments = [s if not ID_LIKE.search(s) else "{id}" for s in split.path.split("/") if s]
    if service == "s3":  # path-style: /bucket/key
        segments = ["{bucket}", "{key}"][:len(segments)]
    return f"{method} /{'/'.join(segments[:3])}{sub}"


@contextmanager
def local_cloud(work: Path) -> Iterator[str]:
    """The project's own local cloud (moto's server), started fresh for the benchmark."""
    state = work / "local-cloud"
    cloud = localcloud.start(state, localcloud.free_port())
    try:
        yield cloud.url
    finally:
        localcloud.stop(state)


# --- the CLI, with timing hooks -------------------------------------------------------------


def hooked_cli(out_path: str, args: list[str]) -> None:
    """``stackwright ARGS`` in this process, recording what ``measured`` reports."""
    import atexit
    import threading as _threading

    from stackwright.engine import calls
    from stackwright.providers.aws import base

    current = _threading.local()
    operations: list[tuple[float, float, str, str, str]] = []
    api_calls: Counter[str] = Counter()
    client_build = [0.0, 0]
    original_run, original_make = calls.ProviderCalls.run, base.AwsClients._make

    async def run(self: Any, urn: str, action: str, fn: Any, *fn_args: Any) -> Any:
        type_token = urn.split("::")[2] if urn.count("::") >= 3 else "?"

        def traced(*a: Any) -> Any:
            current.type = type_token
            try:
                return fn(*a)
            finally:
                current.type = None

        start = time.perf_counter()
        try:
            return await original_run(self, urn, action, traced, *fn_args)
        finally:
            operations.append((start, time.perf_counter(), type_token, action, urn))

    def make(self: Any, service: str) -> Any:
        start = time.perf_counter()
        client = original_make(self, service)
        client_build[0] += time.perf_counter() - start
        client_build[1] += 1
        client.meta.events.register(
            "before-call", lambda **_: api_calls.update([getattr(current, "type", None) or "other"]))
        return client

    calls.ProviderCalls.run = run  # type: ignore[method-assign]
    base.AwsClients._make = make  # type: ignore[method-assign]
    atexit.register(lambda: Path(out_path).write_text(json.dumps({
        "operations": operations, "api_calls": api_calls, "client_build": client_build})))
    sys.argv = ["stackwright", *args]
    from stackwright.cli.main import main as cli_main

    cli_main()


# --- measuring ----------------------------------------------------------------------------


def cli(project: Path, *args: str, hooks: Path | None = None) -> tuple[float, float, float, str]:
    """Run the CLI (through ``hooked_cli`` when ``hooks`` names its output file);
    (wall seconds, start, end, output)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--hooked-cli", str(hooks), *args] \
        if hooks else [*CLI, *args]
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=project, capture_output=True, text=True,
                          env={**os.environ, "STACKWRIGHT_USER": "bench"}, stdin=subprocess.DEVNULL)
    end = time.perf_counter()
    LAST_CPU[0] = children_cpu() - cpu
    out = done.stdout + done.stderr
    if done.returncode != 0:
        raise SystemExit(f"stackwright {' '.join(args)} failed in {project}:\n{out}")
    return end - start, start, end, out


LAST_CPU = [0.0]
"""CPU seconds (user+sys) of the last CLI process."""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def union(intervals: list[tuple[float, float]]) -> float:
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


def measured(proxy: CountingProxy, project: Path, *args: str) -> dict[str, Any]:
    """One command through the proxy and the hooks: wall time, API calls, and where the
    time went."""
    hooks = project.parent / f"hooks-{project.name}-{time.monotonic_ns()}.json"
    wall, start, end, out = cli(project, *args, hooks=hooks)
    cpu = LAST_CPU[0]
    data = json.loads(hooks.read_text())
    hooks.unlink()
    records = proxy.window(start, end)
    operations = data["operations"]
    emulator_busy = union([(s, e) for s, e, _, _ in records])
    provider_busy = union([(s, e) for s, e, *_ in operations])
    request_sum = sum(e - s for s, e, _, _ in records)
    urns_by_type: dict[str, set[str]] = {}
    for _, _, type_token, _, urn in operations:
        urns_by_type.setdefault(type_token, set()).add(urn)
    resources = len({urn for *_, urn in operations})
    by_type = {t: round(n / len(urns_by_type[t]), 2) for t, n in sorted(data["api_calls"].items())
               if t in urns_by_type}
    by_service = Counter(service for _, _, service, _ in records)
    by_operation = Counter(f"{service}:{op}" for _, _, service, op in records)
    first = min((s for s, *_ in operations), default=end)
    last = max((e for _, e, *_ in operations), default=end)
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "resources_touched": resources,
        "api_calls": len(records),
        "calls_per_resource": round(len(records) / resources, 2) if resources else None,
        "calls_per_resource_by_type": by_type,
        "calls_by_service": dict(by_service.most_common()),
        "top_operations": dict(by_operation.most_common(8)),
        "emulator_busy_s": round(emulator_busy, 3),
        "mean_in_flight": round(request_sum / emulator_busy, 2) if emulator_busy else 0.0,
        "provider_busy_s": round(provider_busy, 3),
        "provider_ops_s_sum": round(sum(e - s for s, e, *_ in operations), 3),
        "boto3_clients_built": data["client_build"][1],
        "boto3_client_build_s": round(data["client_build"][0], 3),
        "engine_s": round(wall - provider_busy, 3),
        "engine_share": round((wall - provider_busy) / wall, 3) if wall else 0.0,
        "before_first_call_s": round(first - start, 3),
        "after_last_call_s": round(end - last, 3),
        "_output": out,
    }


def noop_previews(proxy: CountingProxy, project: Path, times: int = 3) -> dict[str, Any]:
    runs = [measured(proxy, project, "preview") for _ in range(times)]
    for run in runs:
        assert "No changes" in run["_output"], run["_output"]
    return {"preview_median_s": round(statistics.median(r["wall_s"] for r in runs), 3),
            "preview_runs_s": [r["wall_s"] for r in runs],
            "preview_api_calls": max(r["api_calls"] for r in runs)}


def stack_config(endpoint: str, **extra: Any) -> str:
    config = {**extra, "aws": {"region": "us-east-1", "endpoint": endpoint, "credentials": CREDENTIALS}}
    return json.dumps({"config": config}, indent=2)  # JSON is YAML


def resource_count(project: Path) -> int:
    _, _, _, out = cli(project, "state", "ls")
    match = re.search(r"(\d+) resources", out)
    return int(match.group(1)) if match else 0


def strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


# --- scenarios ----------------------------------------------------------------------------


def bench_platform(work: Path, proxy: CountingProxy) -> dict[str, Any]:
    """The example's dev stack, pointed at the counting proxy instead of `endpoint: local`."""
    import yaml

    project = work / "platform"
    shutil.copytree(ROOT / "examples" / "platform", project, ignore=shutil.ignore_patterns(".stackwright"))
    dev = yaml.safe_load((project / "stacks" / "dev.yaml").read_text())
    dev["config"]["aws"] = {"region": "us-east-1", "endpoint": proxy.url, "credentials": CREDENTIALS}
    (project / "stacks" / "dev.yaml").write_text(yaml.safe_dump(dev))
    cli(project, "stack", "init", "dev")
    up = measured(proxy, project, "up", "--yes")
    resources = resource_count(project)
    previews = noop_previews(proxy, project)
    refresh = refreshes(proxy, project)
    destroy = measured(proxy, project, "destroy", "--yes", "--allow-destroy")
    return {"scenario": "aws_platform_dev", "resources": resources, "up": strip(up), **previews,
            "refresh": refresh, "destroy": strip(destroy)}


REFRESH_TARGET = 1.2
"""AWS calls per resource of a refresh of the platform (issue 14; 1.81 before)."""


def refreshes(proxy: CountingProxy, project: Path, times: int = 5) -> dict[str, Any]:
    """``times`` refreshes of an unchanged stack: the last run's detail, the medians of
    wall and CPU time, and the most calls any run made."""
    runs = [measured(proxy, project, "refresh") for _ in range(times)]
    for run in runs:
        assert "no drift" in run["_output"], run["_output"]
    last = strip(runs[-1])
    last.update(
        wall_median_s=round(statistics.median(r["wall_s"] for r in runs), 3),
        cpu_median_s=round(statistics.median(r["cpu_s"] for r in runs), 3),
        api_calls=max(r["api_calls"] for r in runs), load_average=round(os.getloadavg()[0], 2), runs=times)
    last["calls_per_resource"] = round(last["api_calls"] / last["resources_touched"], 2)
    return last


def bench_aws500(work: Path, proxy: CountingProxy, emulator: str, direct: bool) -> dict[str, Any]:
    project = work / "aws500"
    shutil.copytree(HERE / "programs" / "aws500", project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "stackwright.yaml").write_text("name: aws500\nmain: __main__.py\n")
    (project / "stacks").mkdir()
    stack_file = project / "stacks" / "dev.yaml"
    stack_file.write_text(stack_config(proxy.url, prefix="b500", per_kind=100))
    cli(project, "stack", "init", "dev")
    up = measured(proxy, project, "up", "--yes")
    resources = resource_count(project)
    previews = noop_previews(proxy, project)
    refresh = refreshes(proxy, project, times=1)
    destroy = measured(proxy, project, "destroy", "--yes", "--allow-destroy")
    result = {"scenario": "aws_500", "resources": resources, "up": strip(up), **previews,
              "refresh": refresh, "destroy": strip(destroy)}
    if direct:  # the same, without the proxy in the way
        stack_file.write_text(stack_config(emulator, prefix="b500", per_kind=100))
        result["up_direct_s"] = round(cli(project, "up", "--yes")[0], 3)
        result["destroy_direct_s"] = round(cli(project, "destroy", "--yes", "--allow-destroy")[0], 3)
    return result


def by_type(step: dict[str, Any]) -> str:
    return "           calls/resource: " + ", ".join(
        f"{k.split(':')[-1]} {v}" for k, v in step["calls_per_resource_by_type"].items())


def summary(results: list[dict[str, Any]]) -> str:
    lines = ["", "AWS benchmarks (local cloud, moto's server; CLI in a subprocess, --parallel 16)"]
    for r in results:
        lines.append(f"\n{r['scenario']}: {r['resources']} resources")
        for step in ("up", "destroy"):
            s = r[step]
            lines.append(
                f"  {step:<8} {s['wall_s']:7.2f}s  {s['api_calls']:5d} API calls ({s['calls_per_resource']:.2f}"
                f"/resource)  emulator busy {s['emulator_busy_s']:.2f}s (mean {s['mean_in_flight']:.1f} in "
                f"flight), provider ops busy {s['provider_busy_s']:.2f}s, engine alone {s['engine_s']:.2f}s "
                f"({100 * s['engine_share']:.0f}%: {s['before_first_call_s']:.2f}s before the first call, "
                f"{s['after_last_call_s']:.2f}s after the last); {s['boto3_clients_built']} boto3 clients "
                f"built in {s['boto3_client_build_s']:.2f}s")
            lines.append(by_type(s))
        lines.append(f"  preview  {r['preview_median_s']:7.2f}s  median of 3 (runs {r['preview_runs_s']}), "
                     f"{r['preview_api_calls']} API calls")
        if "refresh" in r:
            f = r["refresh"]
            target = f" (target <= {REFRESH_TARGET}; 1.81 before)" if r["scenario"] == "aws_platform_dev" else ""
            lines.append(
                f"  refresh: {f['api_calls']} calls for {f['resources_touched']} resources = "
                f"{f['calls_per_resource']:.2f} per resource{target}; median of {f['runs']}: wall "
                f"{f['wall_median_s']:.2f}s, CPU {f['cpu_median_s']:.2f}s (load average {f['load_average']}); "
                f"{f['boto3_clients_built']} boto3 clients built")
            lines.append(by_type(f))
        if "up_direct_s" in r:
            lines.append(f"  without the proxy: up {r['up_direct_s']:.2f}s, destroy {r['destroy_direct_s']:.2f}s")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--hooked-cli"]:
        hooked_cli(sys.argv[2], sys.argv[3:])
        return
    compile_package()
    args = set(sys.argv[1:])
    direct = "--direct" in args
    wanted = args - {"--direct"} or {"platform", "aws500"}
    work = Path(tempfile.mkdtemp(prefix="sw-aws-bench-"))
    results: list[dict[str, Any]] = []
    try:
        with local_cloud(work) as emulator, serving(CountingProxy(emulator)) as proxy:
            if "platform" in wanted:
                results.append(bench_platform(work, proxy))
                print(json.dumps(results[-1]), flush=True)
            if "aws500" in wanted:
                results.append(bench_aws500(work, proxy, emulator, direct))
                print(json.dumps(results[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(summary(results))


if __name__ == "__main__":
    main()
