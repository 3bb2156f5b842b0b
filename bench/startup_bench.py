"""Start-up benchmark (issue 14, point 4): whole commands of the installed `stackwright`
script, min/median/max of N runs (default 7), wall and CPU (user + system) time.

- `stackwright --help`
- `stackwright up --yes` of a two-resource stack (random.Id + local.File) that creates
  both (the stack is destroyed, unmeasured, between runs)
- the same `up` with nothing to change
- the same no-op `up` with the records of checked project files deleted (what the first
  command after editing stackwright.yaml or a stack file costs: PyYAML and pydantic load)

The package's bytecode is compiled first (`compileall`): with PYTHONDONTWRITEBYTECODE set,
every run would otherwise compile the modules it imports again. Targets (issue 14,
point 4): `--help` <= 0.15 s, `up` of the two-resource stack <= 0.2 s (median wall,
on a quiet machine). With `--instructions`, each command also runs once under
`valgrind --tool=callgrind` and its instruction count is printed: a figure the
machine's load does not change.

    .venv/bin/python bench/startup_bench.py [runs] [--instructions]
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
from collections.abc import Callable
from pathlib import Path

from bytecode import compile_package

HERE = Path(__file__).resolve().parent
SCRIPT = str(Path(sys.executable).parent / "stackwright")
PROGRAM = """\
import stackwright as sw
from stackwright.providers import local, random

tag = random.Id("tag", byte_length=4)
local.File("motd", path="out/motd.txt", content=sw.fmt("tag {}\\n", tag.hex))
"""


def run(cwd: Path, env: dict[str, str], *args: str) -> tuple[float, float]:
    """One whole command: (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([SCRIPT, *args], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"stackwright {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def figures(samples: list[tuple[float, float]]) -> dict[str, list[float]]:
    def spread(values: list[float]) -> list[float]:
        return [round(min(values), 3), round(statistics.median(values), 3), round(max(values), 3)]

    return {"wall_min_median_max_s": spread([w for w, _ in samples]),
            "cpu_min_median_max_s": spread([c for _, c in samples])}


def measure(runs: int, before: Callable[[], None], command: Callable[[], tuple[float, float]],
            target: float | None = None) -> dict[str, object]:
    samples = []
    for _ in range(runs):
        before()
        samples.append(command())
    found: dict[str, object] = {**figures(samples)}
    if target is not None:
        found["target_median_wall_s"] = target
    return found


def instructions(cwd: Path, env: dict[str, str], *args: str) -> int:
    """Instructions one whole command executes (callgrind), child processes excluded."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg", SCRIPT, *args],
                              cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"valgrind stackwright {' '.join(args)} failed:\n{done.stderr}")
    return int(done.stderr.rsplit("Collected : ", 1)[1].split()[0])


def main() -> None:
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    runs = int(numbers[0]) if numbers else 7
    counting = "--instructions" in sys.argv and shutil.which("valgrind") is not None
    bytecode = compile_package()
    root = Path(tempfile.mkdtemp(prefix="sw-startup-"))
    env = {**os.environ, "STACKWRIGHT_USER": "bench"}
    project = root / "tiny"
    (project / "stacks").mkdir(parents=True)
    (project / "stackwright.yaml").write_text("name: tiny\nmain: __main__.py\n")
    (project / "stacks" / "dev.yaml").write_text("config: {}\n")
    (project / "__main__.py").write_text(PROGRAM)

    def nothing() -> None:
        return None

    def destroy() -> None:
        run(project, env, "destroy", "--yes")

    def forget_checks() -> None:
        shutil.rmtree(project / ".stackwright" / "cache" / "checked", ignore_errors=True)

    try:
        run(project, env, "stack", "init", "dev")
        results: dict[str, object] = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "bytecode": bytecode,
            "help": measure(runs, nothing, lambda: run(project, env, "--help"), 0.15),
            "up_create_2": measure(runs, destroy, lambda: run(project, env, "up", "--yes"), 0.2),
            "up_noop_2": measure(runs, nothing, lambda: run(project, env, "up", "--yes")),
            "up_noop_2_unchecked_files": measure(runs, forget_checks, lambda: run(project, env, "up", "--yes")),
        }
        if counting:
            results["instructions_help"] = instructions(project, env, "--help")
            destroy()
            results["instructions_up_create_2"] = instructions(project, env, "up", "--yes")
            results["instructions_up_noop_2"] = instructions(project, env, "up", "--yes")
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
