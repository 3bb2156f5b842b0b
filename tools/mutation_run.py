"""Run mutmut on each module of tools/mutation_modules.toml on its own, then score them all.

Mutating every module at once against the union of their tests makes each mutant run every
selected test that reaches its function, end-to-end suites included; that is too slow to
finish. Here each module gets a scratch directory ``.mutation/<dotted module name>/`` holding
links to the repository's ``src`` and ``tests`` and a copy of pyproject.toml whose
``[tool.mutmut]`` is the repository's base table narrowed to that module
(``only_mutate``) and its tests (``pytest_add_cli_args_test_selection``, with the block's
``pytest_args`` added to ``pytest_add_cli_args``). ``mutmut run`` runs there, and the
directory is kept: mutmut's results persist, and the next run tests only the mutants of
functions whose code changed. When the test files changed since the last run, the
survivors are run again by name, since mutmut keeps a verdict until asked again.
Finally tools/mutation_score.py scores every selected module in one table.

Usage: python tools/mutation_run.py [--module PATH]... [--max-children N] [--min 90] [MUTANT_GLOB...]
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from mutation_score import KILLED_EXIT_CODES, equivalent_mutants
from mutation_score import main as score_main

ROOT = Path(__file__).resolve().parents[1]
MODULES_FILE = ROOT / "tools" / "mutation_modules.toml"
SCRATCH = ROOT / ".mutation"
LINKED = ("src", "tests")
TESTS_DIGEST = "tests.sha256"
INPUTS_DIGEST = "inputs.sha256"
TEST_MAP = "mutmut-stats.json"


class ModulesFileError(Exception):
    """tools/mutation_modules.toml does not say what this script needs."""


@dataclass(frozen=True)
class Module:
    """One mutated source file and the tests that can kill its mutants."""

    path: str
    tests: tuple[str, ...]
    pytest_args: tuple[str, ...] = ()
    type_check: bool = False
    """mypy refuses mutants before the tests run (the block's ``type_check = true``)."""

    @property
    def dotted(self) -> str:
        """The module's import name, the prefix of its mutants' names."""
        return ".".join(Path(self.path).relative_to("src").with_suffix("").parts)


def load_modules(text: str) -> list[Module]:
    """The ``[[module]]`` blocks of tools/mutation_modules.toml."""
    modules = []
    for number, block in enumerate(tomllib.loads(text).get("module", []), start=1):
        unknown = set(block) - {"path", "tests", "pytest_args", "type_check"}
        if unknown or not isinstance(block.get("path"), str) or not _strings(block.get("tests")):
            raise ModulesFileError(
                f"[[module]] number {number}: needs path (a string) and tests (a non-empty list of strings)"
                + (f", unknown keys {sorted(unknown)}" if unknown else "")
            )
        pytest_args = block.get("pytest_args", [])
        if pytest_args and not _strings(pytest_args):
            raise ModulesFileError(f"[[module]] {block['path']}: pytest_args must be a list of strings")
        if not isinstance(block.get("type_check", False), bool):
            raise ModulesFileError(f"[[module]] {block['path']}: type_check must be true or false")
        modules.append(Module(block["path"], tuple(block["tests"]), tuple(pytest_args), block.get("type_check", False)))
    return modules


def _strings(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) for item in value)


def scratch_pyproject(pyproject: dict[str, Any], module: Module) -> dict[str, Any]:
    """The repository's pyproject with ``[tool.mutmut]`` narrowed to one module and its tests.

    Everything else (pytest's markers and options) stays, since the tests run under it.
    """
    narrowed = copy.deepcopy(pyproject)
    base = narrowed.setdefault("tool", {}).get("mutmut", {})
    narrowed["tool"]["mutmut"] = {
        **base,
        "only_mutate": [module.path],
        "pytest_add_cli_args": [*base.get("pytest_add_cli_args", []), *module.pytest_args],
        "pytest_add_cli_args_test_selection": list(module.tests),
    }
    if module.type_check:
        narrowed["tool"]["mutmut"]["type_check_command"] = type_check(module)
    return narrowed


def run_env() -> dict[str, str]:
    """The environment with this Python's scripts (mutmut, mypy) first on PATH."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def type_check(module: Module) -> list[str]:
    """mypy with the project's strict settings on the mutated file: a mutant it refuses (a
    ``None`` argument, a dropped keyword) is killed without running the tests. The two
    codes left out are artifacts of mutmut's generated file (its trampolines redefine
    names and leave ``type: ignore`` comments unused). mutmut knows mypy's output by the
    command's name, so it is found on PATH (``run_env``)."""
    return ["mypy", "--output", "json",
            "--disable-error-code", "unused-ignore", "--disable-error-code", "no-redef", module.path]


def prepare_scratch(module: Module, root: Path, scratch: Path) -> Path:
    """Create or refresh the module's scratch directory; mutmut's results in it are kept."""
    directory = scratch / module.dotted
    directory.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(root / name, directory))
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    text = tomli_w.dumps(scratch_pyproject(pyproject, module))
    target = directory / "pyproject.toml"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return directory


def tests_digest(root: Path, module: Module) -> str:
    """A digest of every file under tests/ and of the module's test selection."""
    digest = hashlib.sha256(json.dumps([module.tests, module.pytest_args]).encode())
    for path in sorted((root / "tests").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def inputs_digest(root: Path, module: Module) -> str:
    """A digest of the module's source and of its tests: what mutmut's test map was recorded from."""
    digest = hashlib.sha256(tests_digest(root, module).encode())
    digest.update((root / module.path).read_bytes())
    return digest.hexdigest()


def forget_stale_test_map(directory: Path, digest: str) -> bool:
    """Delete mutmut's map of which tests reach which function when it was recorded from
    another source or other tests; True when deleted.

    mutmut 3.8.1 keeps the map across runs and may match a changed or new function to only
    some of the tests that reach it, so its mutants survive tests that kill them. Without
    the file, mutmut records the map again and keeps every verdict.
    """
    recorded_file = directory / INPUTS_DIGEST
    recorded = recorded_file.read_text(encoding="utf-8").strip() if recorded_file.exists() else None
    test_map = directory / "mutants" / TEST_MAP
    if recorded == digest or not test_map.exists():
        return False
    test_map.unlink()
    return True


def meta_path(directory: Path, module: Module) -> Path:
    """Where mutmut records the module's verdicts."""
    return directory / "mutants" / f"{module.path}.meta"


def survivors(directory: Path, module: Module, equivalents: set[str]) -> list[str]:
    """Mutants of the last run that no test killed and that are not listed as equivalent."""
    meta = meta_path(directory, module)
    if not meta.exists():
        return []
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return sorted(
        name for name, code in codes.items() if code is not None and code not in KILLED_EXIT_CODES and name not in equivalents
    )


def selected(modules: Sequence[Module], paths: Sequence[str], globs: Sequence[str]) -> list[Module]:
    """The modules named by ``--module`` or whose mutants a glob can match (all without either)."""
    unknown = set(paths) - {m.path for m in modules}
    if unknown:
        raise ModulesFileError(f"not in {MODULES_FILE.relative_to(ROOT)}: {', '.join(sorted(unknown))}")
    chosen = [m for m in modules if not paths or m.path in paths]
    if globs:
        chosen = [m for m in chosen if any(may_match(m, glob) for glob in globs)]
    return chosen


def may_match(module: Module, glob: str) -> bool:
    """Whether a glob can name mutants of the module (``stackwright.graph.x_walk*`` names graph.py's).

    A glob without a literal module prefix (``*walk*``) may match any module; the run then
    checks the module's recorded mutant names, when it has some, before asking mutmut.
    """
    literal = re.split(r"[*?\[]", glob, maxsplit=1)[0]
    name_start = module.dotted + ".x"
    return name_start.startswith(literal) or literal.startswith(name_start)


def recorded_names(directory: Path, module: Module) -> set[str] | None:
    """The module's mutant names from its last run, or None before the first."""
    meta = meta_path(directory, module)
    if not meta.exists():
        return None
    return set(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])


def mutmut_command(max_children: int, names: Iterable[str]) -> list[str]:
    """``mutmut run`` from the same environment as this script."""
    mutmut = Path(sys.executable).with_name("mutmut")
    return [str(mutmut) if mutmut.exists() else "mutmut", "run", "--max-children", str(max_children), *names]


def run_module(module: Module, directory: Path, max_children: int, names: Sequence[str], equivalents: set[str]) -> bool:
    """Run the module's mutants not yet run (or those named); False when mutmut failed.

    When the test files changed since the last run, the survivors are run again by name too;
    when the module's source or its tests changed, mutmut's test map is recorded again first.
    """
    digest = tests_digest(ROOT, module)
    digest_file = directory / TESTS_DIGEST
    recorded = digest_file.read_text(encoding="utf-8").strip() if digest_file.exists() else None
    stale = survivors(directory, module, equivalents) if recorded not in (None, digest) and not names else []
    print(f"\n== {module.path} ({', '.join(module.tests)}) in {directory.relative_to(ROOT)}", flush=True)
    inputs = inputs_digest(ROOT, module)
    if forget_stale_test_map(directory, inputs):
        print("== the module or its tests changed since the last run: mutmut maps its tests again", flush=True)
    if subprocess.run(mutmut_command(max_children, names), cwd=directory, env=run_env(), check=False).returncode != 0:
        return False
    if stale:
        print(f"== the tests changed since the last run: its {len(stale)} survivors again", flush=True)
        if subprocess.run(mutmut_command(max_children, stale), cwd=directory, env=run_env(), check=False).returncode != 0:
            return False
    (directory / INPUTS_DIGEST).write_text(inputs + "\n", encoding="utf-8")
    if not names:
        digest_file.write_text(digest + "\n", encoding="utf-8")
    return True


def names_for(directory: Path, module: Module, globs: Sequence[str]) -> list[str] | None:
    """The globs that name mutants of this module (all of them before its first run); None if none do."""
    recorded = recorded_names(directory, module)
    if not globs or recorded is None:
        return list(globs)
    matching = [glob for glob in globs if any(fnmatch.fnmatch(name, glob) for name in recorded)]
    return matching or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", default=[], metavar="PATH", help="only this module (repeatable)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--min", type=float, default=90.0, help="lowest score a module may have, in percent")
    parser.add_argument("--score-only", action="store_true", help="score the last results without running mutmut")
    parser.add_argument("globs", nargs="*", metavar="MUTANT_GLOB", help="run these mutants (again), by name or glob")
    args = parser.parse_args(argv)
    try:
        modules = selected(load_modules(MODULES_FILE.read_text(encoding="utf-8")), args.module, args.globs)
    except (ModulesFileError, tomllib.TOMLDecodeError) as error:
        print(f"{MODULES_FILE.relative_to(ROOT)}: {error}", file=sys.stderr)
        return 2
    equivalents = equivalent_mutants(ROOT / "docs" / "mutation.md")
    failed, scored = [], []
    for module in modules:
        directory = prepare_scratch(module, ROOT, SCRATCH)
        names = names_for(directory, module, args.globs)
        if names is None:
            continue
        if not args.score_only and not run_module(module, directory, args.max_children, names, equivalents):
            failed.append(f"mutmut failed on {module.path}")
        if meta_path(directory, module).exists():
            scored.append(directory / "mutants")
        else:
            failed.append(f"no results for {module.path}: it has not been run")
    if not scored and not failed:
        print("no module matches the selection", file=sys.stderr)
        return 2
    print(flush=True)
    options = ["--min", str(args.min), "--equivalents", str(ROOT / "docs" / "mutation.md")]
    status = score_main(options + [arg for path in scored for arg in ("--mutants", str(path))]) if scored else 1
    for reason in failed:
        print(f"FAIL {reason}", file=sys.stderr)
    return 1 if failed or status else 0


if __name__ == "__main__":
    sys.exit(main())
