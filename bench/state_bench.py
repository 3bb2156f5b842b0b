"""State backend benchmark (`make bench`, or `bench/state_bench.py`): `up` of the
2,000-resource synthetic DAG with the state in SQLite and with the state in S3 (moto's
server on 127.0.0.1, started here), at 50 ms per provider call (--parallel 64, as in
run.py's DAG benchmark) and at zero latency (pure state overhead). Median of 3 runs per
backend; the target is S3 at most 1.5 x SQLite."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from run import machine, make_project  # noqa: E402

from bytecode import compile_package

RUNS = 3
COUNT = 2000
PARALLEL = 64


def timed_up(project_dir: Path) -> dict[str, float]:
    """One in-process `up` of a fresh stack: whole wall, and apply wall from the
    confirmation to the end (checkpoint and audit record included)."""
    from stackwright.engine.apply import ApplyOptions
    from stackwright.engine.events import EventSink
    from stackwright.operations.session import open_session
    from stackwright.operations.update import up
    from stackwright.program.project import load_project

    cwd = os.getcwd()
    os.chdir(project_dir)
    marks: dict[str, float] = {}

    def confirm(plan: object) -> bool:
        marks["apply"] = time.perf_counter()
        return True

    try:
        session = open_session(load_project(project_dir), "dev", "bench")
        start = time.perf_counter()
        outcome = up(session, options=ApplyOptions(parallel=PARALLEL), sink=EventSink(), confirm=confirm)
        end = time.perf_counter()
        session.close()
    finally:
        os.chdir(cwd)
    assert outcome.ok, outcome.result
    return {"up_s": end - start, "apply_s": end - marks["apply"]}


def start_emulator(folder: Path) -> tuple[object, str]:
    from stackwright.providers.aws import localcloud

    port = localcloud.free_port()
    proc = localcloud.spawn(port, folder / "moto.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not localcloud.is_serving(url):
        if time.monotonic() > deadline:
            raise SystemExit("the emulator did not start")
        time.sleep(0.1)
    return proc, url


def s3_bucket(endpoint: str) -> str:
    import boto3

    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket


def one_up(root: Path, name: str, latency: float, n: int, url: str | None) -> dict[str, float]:
    if url:
        os.environ["STACKWRIGHT_STATE_URL"] = url.replace("PREFIX", f"{name}-{latency}-{n}")
    else:
        os.environ.pop("STACKWRIGHT_STATE_URL", None)
    try:
        return timed_up(make_project(root / f"{name}-{latency}-{n}", COUNT, latency))
    finally:
        os.environ.pop("STACKWRIGHT_STATE_URL", None)


def bench_latency(root: Path, latency: float, url: str) -> dict[str, object]:
    """SQLite and S3 runs alternate, so that load from elsewhere on the machine falls
    on both alike."""
    walls: dict[str, list[dict[str, float]]] = {"sqlite": [], "s3": []}
    for n in range(RUNS):
        walls["sqlite"].append(one_up(root, "sqlite", latency, n, None))
        walls["s3"].append(one_up(root, "s3", latency, n, url))
    out: dict[str, object] = {}
    for name, runs in walls.items():
        out[name] = {"up_median_s": statistics.median(w["up_s"] for w in runs),
                     "apply_median_s": statistics.median(w["apply_s"] for w in runs),
                     "apply_runs_s": [round(w["apply_s"], 3) for w in runs]}
    sqlite, s3 = walls["sqlite"], walls["s3"]
    out["apply_ratio_s3_over_sqlite"] = (statistics.median(w["apply_s"] for w in s3)
                                         / statistics.median(w["apply_s"] for w in sqlite))
    out["up_ratio_s3_over_sqlite"] = (statistics.median(w["up_s"] for w in s3)
                                      / statistics.median(w["up_s"] for w in sqlite))
    return out


def main() -> None:
    compile_package()
    root = Path(tempfile.mkdtemp(prefix="sw-state-bench-"))
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    proc, endpoint = start_emulator(root)
    results: dict[str, object] = {"machine": machine(), "resources": COUNT, "parallel": PARALLEL}
    try:
        url = f"s3://{s3_bucket(endpoint)}/PREFIX?endpoint={endpoint}&region=us-east-1"
        for latency in (0.05, 0.0):
            results[f"latency_{latency}"] = bench_latency(root, latency, url)
            print(json.dumps({f"latency_{latency}": results[f"latency_{latency}"]}), flush=True)
    finally:
        proc.terminate()  # type: ignore[attr-defined]
        proc.wait(10)  # type: ignore[attr-defined]
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
