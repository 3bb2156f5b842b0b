"""The main figures for the working tree beside a git ref, interleaved (issue 14, point 7).

    make bench-compare REF=main        # or: .venv/bin/python bench/compare.py REF [runs]

The ref's `src/` is exported with `git archive` into a temporary folder and both trees are
run by the same interpreter and virtualenv, the ref's through PYTHONPATH (which comes
before the editable install's path). Both trees' bytecode is compiled first. Each round
runs every measure once per tree, alternating which tree goes first, so load from other
work hits both alike. Printed per measure: median wall and CPU seconds per tree and the
ratio working tree ÷ ref (below 1 is faster).

Measures (whole `stackwright` commands, each tree with its own projects and state):
- `--help`;
- `up` creating a two-resource stack (destroyed, unmeasured, before each run);
- no-op `preview` of the 10,000-resource synthetic program;
- `up` creating 1,000 synthetic resources at zero latency (destroyed before each run):
  the apply bookkeeping.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bytecode import compile_package  # noqa: E402
from startup_bench import PROGRAM as TINY_PROGRAM  # noqa: E402

SCRIPT = str(Path(sys.executable).parent / "stackwright")
SYNTHETIC = HERE / "programs" / "synthetic"


@dataclass
class Tree:
    """One side of the comparison: a source tree and the projects measured with it."""

    label: str
    src: Path
    root: Path
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.src), "STACKWRIGHT_USER": "bench"}

    def run(self, project: Path, *args: str) -> tuple[float, float]:
        """One whole command: (wall seconds, CPU seconds of the child)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([SCRIPT, *args], cwd=project, env=self.env(), capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"[{self.label}] stackwright {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def export_ref(ref: str, into: Path) -> Path:
    """The ref's src/ folder, written under ``into``."""
    archive = into / "ref.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "src"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "ref", filter="data")
    archive.unlink()
    return into / "ref" / "src"


def project(tree: Tree, name: str, program: str | None = None, count: int = 0) -> Path:
    """A stack `dev` initialised by ``tree``: the tiny program, or the synthetic one."""
    folder = tree.root / name
    if program is None:
        shutil.copytree(SYNTHETIC, folder)
    else:
        folder.mkdir(parents=True)
        (folder / "__main__.py").write_text(program)
    (folder / "stackwright.yaml").write_text(f"name: {name}\nmain: __main__.py\n")
    (folder / "stacks").mkdir()
    (folder / "stacks" / "dev.yaml").write_text(
        f"config:\n  count: {count}\n  synthetic:\n    latency: 0.0\n" if program is None else "config: {}\n")
    tree.run(folder, "stack", "init", "dev")
    return folder


Measure = Callable[[Tree], tuple[float, float]]


def measures(trees: list[Tree]) -> dict[str, Measure]:
    """Each measure's set-up is done here, once per tree; the callables time one run."""
    tiny = {t.label: project(t, "tiny", TINY_PROGRAM) for t in trees}
    big = {t.label: project(t, "synthetic-10000", count=10_000) for t in trees}
    thousand = {t.label: project(t, "synthetic-1000", count=1_000) for t in trees}
    for t in trees:
        t.run(big[t.label], "up", "--yes", "--parallel", "64")

    def help_(t: Tree) -> tuple[float, float]:
        return t.run(tiny[t.label], "--help")

    def up_tiny(t: Tree) -> tuple[float, float]:
        t.run(tiny[t.label], "destroy", "--yes")
        return t.run(tiny[t.label], "up", "--yes")

    def preview_10k(t: Tree) -> tuple[float, float]:
        return t.run(big[t.label], "preview")

    def up_1000(t: Tree) -> tuple[float, float]:
        t.run(thousand[t.label], "destroy", "--yes", "--parallel", "64")
        return t.run(thousand[t.label], "up", "--yes", "--parallel", "64")

    return {"--help": help_, "up, 2 resources created": up_tiny,
            "no-op preview, 10,000 resources": preview_10k, "up, 1,000 resources created": up_1000}


def table(trees: list[Tree], names: list[str]) -> list[dict[str, object]]:
    """Per measure: median wall and CPU of the ref and of the working tree, and ratios."""
    ref, work = trees
    rows: list[dict[str, object]] = []
    for name in names:
        medians = {f"{side}_{kind}_s": round(statistics.median(sample[index] for sample in t.samples[name]), 3)
                   for side, t in (("ref", ref), ("tree", work)) for index, kind in enumerate(("wall", "cpu"))}
        rows.append({"measure": name, **medians,
                     "ratio_wall": round(medians["tree_wall_s"] / medians["ref_wall_s"], 2),
                     "ratio_cpu": round(medians["tree_cpu_s"] / medians["ref_cpu_s"], 2)})
    return rows


def show(rows: list[dict[str, object]], ref: str, runs: int) -> None:
    print(f"median of {runs} interleaved runs; ratio = working tree ÷ {ref} (below 1 is faster); "
          f"load average now {os.getloadavg()[0]:.1f}")
    width = max(len(str(r["measure"])) for r in rows)
    print(f"{'measure':<{width}}  {'ref wall':>9}  {'tree wall':>9}  {'ratio':>6}  {'ref CPU':>8}  {'tree CPU':>8}  {'ratio':>6}")
    for r in rows:
        print(f"{r['measure']:<{width}}  {r['ref_wall_s']:>9.3f}  {r['tree_wall_s']:>9.3f}  {r['ratio_wall']:>6.2f}  "
              f"{r['ref_cpu_s']:>8.3f}  {r['tree_cpu_s']:>8.3f}  {r['ratio_cpu']:>6.2f}")
    print(json.dumps({"ref": ref, "runs": runs, "rows": rows}))


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: bench/compare.py REF [runs]   (make bench-compare REF=main)")
    ref_name = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    scratch = Path(tempfile.mkdtemp(prefix="sw-compare-"))
    try:
        trees = [Tree("ref", export_ref(ref_name, scratch), scratch / "ref-projects"),
                 Tree("tree", ROOT / "src", scratch / "work-projects")]
        for t in trees:
            compile_package(t.src)
            t.root.mkdir()
        chosen = measures(trees)
        for turn in range(runs):
            for name, measure in chosen.items():
                for t in trees if turn % 2 == 0 else reversed(trees):
                    t.samples.setdefault(name, []).append(measure(t))
        show(table(trees, list(chosen)), ref_name, runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
