"""Workspace benchmark (`make bench`, or `python bench/workspace_bench.py [--full]`).

A git repository holding a workspace of 1,000 stacks: `network` (staging, production),
`cluster` (staging, production, each depending on the network stack of its name) and
`tenants`, whose 996 stacks each hold three tenants in config and read the network's
and the cluster's outputs through StackReference. After every stack is applied, one
tenant stack's config changes in a commit; the figure is the wall time of the whole
`stackwright run preview --changed-since HEAD~1` command (median of 3), which must
select exactly that stack (tenant stacks have no dependents). Target: <= 1.0 s.

Setup applies the 1,000 stacks in this process through the Python API (about a
minute); `--full` applies them with `stackwright run up --all --yes` instead and
reports that command's time too.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "stackwright.cli.main"]
TENANT_STACKS = 996
CHANGED = "t0500"
TARGET_S = 1.0

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


def apply_in_process(repo: Path) -> float:
    """Every stack applied through the Python API, dependencies first."""
    from stackwright.engine.apply import ApplyOptions
    from stackwright.engine.events import EventSink
    from stackwright.operations.session import open_session, open_store
    from stackwright.operations.update import up
    from stackwright.program.project import load_project

    start = time.perf_counter()
    cwd = os.getcwd()
    order = [("network", ["staging", "production"]), ("cluster", ["staging", "production"]),
             ("tenants", [f"t{i:04d}" for i in range(1, TENANT_STACKS + 1)])]
    try:
        for name, stacks in order:
            project = load_project(repo / name)
            os.chdir(project.root)
            store = open_store(project)
            for stack in stacks:
                store.create_stack(stack)
            store.close()
            for stack in stacks:
                session = open_session(project, stack, "bench")
                try:
                    outcome = up(session, options=ApplyOptions(parallel=16), sink=EventSink(),
                                 confirm=lambda plan: True)
                finally:
                    session.close()
                assert outcome.ok, (name, stack, outcome.result)
    finally:
        os.chdir(cwd)
    return time.perf_counter() - start


def bench(full: bool) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="sw-workspace-bench-"))
    try:
        repo = make_repo(root)
        result: dict[str, object] = {"stacks": TENANT_STACKS + 4}
        if full:
            wall, _ = cli(repo, "run", "up", "--all", "--yes", "--parallel-stacks",
                          str(os.cpu_count() or 2))
            result["run_up_all_s"] = round(wall, 2)
        else:
            result["setup_in_process_s"] = round(apply_in_process(repo), 2)
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


def check_selection(out: str) -> None:
    """Exactly the changed stack is selected and previewed, showing one tenant to add."""
    assert f"Selected 1 of {TENANT_STACKS + 4} stacks" in out, out[:2000]
    assert f"tenants/{CHANGED}  config changed: tenants/stacks/{CHANGED}.yaml" in out, out[:2000]
    assert "1 to create" in out, out[-2000:]
    assert "1 stack(s)" in out and "1 ok" in out, out[-2000:]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    result = bench(full="--full" in sys.argv[1:])
    print(json.dumps({"workspace_1000_stacks": result}), flush=True)
    median = result["changed_since_preview_median_s"]
    assert isinstance(median, float)
    if median > TARGET_S:
        print(f"workspace: run preview --changed-since took {median:.2f}s (target {TARGET_S}s)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
