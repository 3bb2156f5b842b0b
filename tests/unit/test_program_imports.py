"""The modules a program and its policy files import from their folders are compiled from
their source, never loaded from ``__pycache__`` (program/runner.py): the program digest
a saved plan pins covers the source and skips ``__pycache__``, and Python runs a
bytecode file there in place of the source whenever its header matches the source."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import py_compile
import sys
from pathlib import Path

import pytest

from stackwright.model.context import ConfigSource
from stackwright.program.project import Project, load_project
from stackwright.program.runner import project_imports, run_program

PROGRAM = """\
import stackwright as sw
from helper import WHO
from pkg.deep import WHERE
from venv_like import INSTALLED

sw.export("who", WHO)
sw.export("where", WHERE)
sw.export("installed", INSTALLED)
"""


def forge(source: Path, code: str, tmp: Path) -> None:
    """A bytecode file for ``source`` that Python runs whatever the source says."""
    other = tmp / f"forged_{source.stem}.py"
    other.write_text(code)
    py_compile.compile(str(other), cfile=importlib.util.cache_from_source(str(source)), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "stackwright.yaml").write_text("name: proj\n")
    (root / "__main__.py").write_text(PROGRAM)
    (root / "helper.py").write_text("WHO = 'source'\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "deep.py").write_text("WHERE = 'source'\n")
    site = root / ".venv" / "site-packages"  # installed packages: loaded as Python always does
    site.mkdir(parents=True)
    (site / "venv_like.py").write_text("INSTALLED = 'source'\n")
    return load_project(root)


def outputs(project: Project, python_path: tuple[Path, ...] = ()) -> dict[str, object]:
    graph = run_program(project, "dev", ConfigSource({}, "stacks/dev.yaml"), python_path=python_path)
    return dict(graph.exports)


def test_bytecode_beside_the_program_s_modules_is_never_run(project: Project, tmp_path: Path) -> None:
    root = project.root
    forge(root / "helper.py", "WHO = 'bytecode'\n", tmp_path)
    forge(root / "pkg" / "deep.py", "WHERE = 'bytecode'\n", tmp_path)
    hooks, path = list(sys.path_hooks), list(sys.path)
    sys.path.append(str(root / ".venv" / "site-packages"))
    try:
        forge(root / ".venv" / "site-packages" / "venv_like.py", "INSTALLED = 'bytecode'\n", tmp_path)
        assert outputs(project) == {"who": "source", "where": "source", "installed": "bytecode"}
    finally:
        sys.path[:] = path
        sys.modules.pop("venv_like", None)
    assert sys.path_hooks == hooks
    left = {p: f for p, f in sys.path_importer_cache.items() if p.startswith(str(root)) and ".venv" not in p}
    assert left and all(type(f) is not importlib.machinery.FileFinder for f in left.values())  # none reads bytecode


def test_shared_code_on_the_python_path_is_compiled_from_its_source(project: Project, tmp_path: Path) -> None:
    shared = tmp_path / "lib"
    shared.mkdir()
    (project.root / "helper.py").unlink()
    (shared / "helper.py").write_text("WHO = 'shared source'\n")
    forge(shared / "helper.py", "WHO = 'bytecode'\n", tmp_path)
    (project.root / "__main__.py").write_text("import stackwright as sw\nfrom helper import WHO\n"
                                              "sw.export('who', WHO)\n")
    assert outputs(project, (shared,)) == {"who": "shared source"}


def test_nothing_is_written_to_pycache_and_an_edit_is_seen_at_once(project: Project) -> None:
    root = project.root
    with project_imports([root]):
        import helper  # type: ignore[import-not-found]

        assert helper.WHO == "source"
    (root / "helper.py").write_text("WHO = 'edited'\n")  # same size, maybe the same second
    with project_imports([root]):
        import helper  # type: ignore[import-not-found]  # noqa: F811

        assert helper.WHO == "edited"
    assert not (root / "__pycache__").exists()
    assert "helper" not in sys.modules


def test_a_relative_project_folder_and_its_packages_are_compiled_from_source(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forge(project.root / "pkg" / "deep.py", "WHERE = 'bytecode'\n", tmp_path)
    monkeypatch.chdir(project.root.parent)
    with project_imports([Path(project.root.name)]):
        from pkg.deep import WHERE  # type: ignore[import-not-found]

        assert WHERE == "source"


def test_a_zip_file_on_the_path_inside_the_project_still_imports(project: Project) -> None:
    import zipfile

    archive = project.root / "deps.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("zipped.py", "WHAT = 'zipped'\n")
    (project.root / "__main__.py").write_text(
        "import sys\nimport pathlib\nimport stackwright as sw\n"
        "sys.path.insert(0, str(pathlib.Path(__file__).parent / 'deps.zip'))\n"
        "from zipped import WHAT\nsw.export('what', WHAT)\n")
    assert outputs(project) == {"what": "zipped"}
