"""tools/mutation_run.py: each module of tools/mutation_modules.toml gets a scratch copy whose
pyproject narrows mutmut to that module and its tests (docs/mutation.md, "Running it")."""

from __future__ import annotations

import importlib
import json
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]

MODULES = """
[[module]]
path = "src/stackwright/graph.py"
tests = ["tests/unit/test_graph.py"]

[[module]]
path = "src/stackwright/state/sql_store.py"
tests = ["tests/test_state_sqlite.py", "tests/test_state_store.py"]
pytest_args = ["-k", "not postgres and not s3"]
"""

PYPROJECT = """
[project]
name = "example"

[tool.pytest.ini_options]
markers = ["aws: needs the local AWS emulator"]

[tool.mutmut]
source_paths = ["src"]
pytest_add_cli_args = ["-p", "no:randomly"]
only_mutate = ["src/stackwright/everything.py"]
"""


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    return importlib.import_module("mutation_run")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src" / "stackwright").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    return root


def test_the_scratch_pyproject_names_only_the_module_and_its_tests(run: ModuleType, repo: Path) -> None:
    sql_store = run.load_modules(MODULES)[1]

    directory = run.prepare_scratch(sql_store, repo, repo / ".mutation")

    assert directory == repo / ".mutation" / "stackwright.state.sql_store"
    written = tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))
    assert written["tool"]["mutmut"] == {
        "source_paths": ["src"],
        "only_mutate": ["src/stackwright/state/sql_store.py"],
        "pytest_add_cli_args": ["-p", "no:randomly", "-k", "not postgres and not s3"],
        "pytest_add_cli_args_test_selection": ["tests/test_state_sqlite.py", "tests/test_state_store.py"],
    }
    assert written["tool"]["pytest"] == {"ini_options": {"markers": ["aws: needs the local AWS emulator"]}}
    assert (directory / "src").resolve() == repo / "src"
    assert (directory / "tests").resolve() == repo / "tests"


def test_a_module_marked_type_check_has_mypy_refuse_its_mutants_first(run: ModuleType, repo: Path) -> None:
    apply = run.load_modules(
        '[[module]]\npath = "src/stackwright/engine/apply.py"\ntests = ["tests/unit/test_engine.py"]\ntype_check = true\n')[0]

    directory = run.prepare_scratch(apply, repo, repo / ".mutation")

    command = tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]["type_check_command"]
    assert command[0] == "mypy" and command[-1] == "src/stackwright/engine/apply.py"
    assert "json" in command


def test_a_second_run_keeps_the_scratch_copy_and_follows_the_repository(run: ModuleType, repo: Path) -> None:
    graph = run.load_modules(MODULES)[0]
    directory = run.prepare_scratch(graph, repo, repo / ".mutation")
    results = directory / "mutants" / "src" / "stackwright" / "graph.py.meta"
    results.parent.mkdir(parents=True)
    results.write_text("{}", encoding="utf-8")
    base = PYPROJECT.replace('["-p", "no:randomly"]', '["-p", "no:randomly", "-q"]')
    (repo / "pyproject.toml").write_text(base, encoding="utf-8")

    again = run.prepare_scratch(graph, repo, repo / ".mutation")

    assert again == directory and results.exists()
    written = tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))
    assert written["tool"]["mutmut"]["pytest_add_cli_args"] == ["-p", "no:randomly", "-q"]
    assert written["tool"]["mutmut"]["only_mutate"] == ["src/stackwright/graph.py"]


def test_a_module_without_tests_is_refused(run: ModuleType) -> None:
    with pytest.raises(run.ModulesFileError, match="number 1: needs path"):
        run.load_modules('[[module]]\npath = "src/stackwright/graph.py"\ntests = []\n')
    with pytest.raises(run.ModulesFileError, match=r"unknown keys \['test'\]"):
        run.load_modules('[[module]]\npath = "src/stackwright/graph.py"\ntests = ["t.py"]\ntest = "x"\n')


def test_modules_are_chosen_by_path_or_by_a_mutant_glob(run: ModuleType) -> None:
    graph, sql_store = run.load_modules(MODULES)

    assert run.selected([graph, sql_store], ["src/stackwright/graph.py"], []) == [graph]
    assert run.selected([graph, sql_store], [], ["stackwright.state.sql_store.xǁSqlStateStoreǁacquire_lock*"]) == [
        sql_store
    ]
    assert run.selected([graph, sql_store], [], ["stackwright.graph.x_walk__mutmut_1"]) == [graph]
    assert run.selected([graph, sql_store], [], ["stackwright.state.*"]) == [sql_store]
    assert run.selected([graph, sql_store], [], ["*__mutmut_1"]) == [graph, sql_store]
    with pytest.raises(run.ModulesFileError, match="src/stackwright/nothing.py"):
        run.selected([graph, sql_store], ["src/stackwright/nothing.py"], [])


def test_every_listed_module_and_test_file_exists(run: ModuleType) -> None:
    modules = run.load_modules((ROOT / "tools" / "mutation_modules.toml").read_text(encoding="utf-8"))

    assert modules
    missing = [p for m in modules for p in (m.path, *m.tests) if not (ROOT / p).exists()]
    assert missing == []


def _results(directory: Path, module: str, codes: dict[str, int | None]) -> Path:
    meta = directory / "mutants" / f"{module}.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes}), encoding="utf-8")
    return directory / "mutants"


def _score(tmp_path: Path, equivalent: str, results: dict[str, dict[str, int | None]]) -> int:
    """tools/mutation_score.py over made-up results, with one mutant listed as equivalent."""
    doc = tmp_path / "mutation.md"
    doc.write_text(f"## Equivalent mutants\n\n- `{equivalent}`: same order.\n", encoding="utf-8")
    roots = [_results(tmp_path / Path(module).stem, module, codes) for module, codes in results.items()]
    args = ["--equivalents", str(doc), *(arg for root in roots for arg in ("--mutants", str(root)))]
    return int(importlib.import_module("mutation_score").main(args))


def test_one_table_scores_every_module_and_fails_on_a_mutant_not_run(
    run: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _score(tmp_path, "stackwright.graph.x_walk__mutmut_3", {
        "src/stackwright/graph.py": {"stackwright.graph.x_walk__mutmut_1": 1, "stackwright.graph.x_walk__mutmut_2": 36,
                                     "stackwright.graph.x_walk__mutmut_3": 0},
        "src/stackwright/state/sql_store.py": {"stackwright.state.sql_store.x_inflate__mutmut_1": 1,
                                               "stackwright.state.sql_store.x_inflate__mutmut_2": None},
    })

    out, err = capsys.readouterr()
    assert "| src/stackwright/graph.py | 3 | 2 | 0 | 1 | 0 | 100.0% |" in out
    assert "| src/stackwright/state/sql_store.py | 2 | 1 | 0 | 0 | 1 | 50.0% |" in out
    assert "FAIL src/stackwright/state/sql_store.py: 1 mutants not run" in err
    assert status == 1


def test_a_mutant_listed_as_equivalent_but_killed_fails_the_check(
    run: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _score(tmp_path, "stackwright.graph.x_walk__mutmut_2", {
        "src/stackwright/graph.py": {"stackwright.graph.x_walk__mutmut_1": 1, "stackwright.graph.x_walk__mutmut_2": 1},
    })

    out, err = capsys.readouterr()
    assert "| src/stackwright/graph.py | 2 | 2 | 0 | 0 | 0 | 100.0% |" in out
    assert "listed as equivalent but killed: stackwright.graph.x_walk__mutmut_2" in out
    assert "FAIL src/stackwright/graph.py: 1 mutants listed as equivalent were killed" in err
    assert status == 1


def test_a_changed_module_or_test_makes_mutmut_map_its_tests_again_and_keeps_the_verdicts(
    run: ModuleType, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = run.load_modules(MODULES)[0]
    source = repo / graph.path
    source.write_text("def walk():\n    return 1\n", encoding="utf-8")
    (repo / "tests" / "unit").mkdir()
    test_file = repo / "tests" / "unit" / "test_graph.py"
    test_file.write_text("def test_walk():\n    pass\n", encoding="utf-8")
    directory = run.prepare_scratch(graph, repo, repo / ".mutation")
    mutants = _results(directory, graph.path, {"stackwright.graph.x_walk__mutmut_1": 1})
    verdicts = (mutants / f"{graph.path}.meta").read_text(encoding="utf-8")
    seen: list[bool] = []

    def mutmut(command: list[str], cwd: Path, check: bool, env: dict[str, str]) -> object:
        seen.append((cwd / "mutants" / run.TEST_MAP).exists())
        (cwd / "mutants" / run.TEST_MAP).write_text("{}", encoding="utf-8")
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(run, "ROOT", repo)
    monkeypatch.setattr(run.subprocess, "run", mutmut)
    (mutants / run.TEST_MAP).write_text("{}", encoding="utf-8")

    def run_once() -> bool:
        assert run.run_module(graph, directory, 1, [], set())
        return seen[-1]

    assert not run_once(), "a scratch directory without a recorded digest gets a fresh map"
    assert run_once(), "nothing changed: the map is kept"
    source.write_text("def walk():\n    return 2\n", encoding="utf-8")
    assert not run_once(), "the module changed"
    assert run_once()
    test_file.write_text("def test_walk():\n    assert True\n", encoding="utf-8")
    assert not run_once(), "a test changed"
    assert (mutants / f"{graph.path}.meta").read_text(encoding="utf-8") == verdicts
