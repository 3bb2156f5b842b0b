"""What the program digest a saved plan pins covers (program/digest.py, docs/plan-file.md
check 3): every file that lives with the code, Python or not, and the workspace's shared
``python_path`` code; not the state, outputs, config, trust file, dot-files or plans."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackwright.program import workspace
from stackwright.program.digest import (
    WORKSPACE_FILE, ProgramDigest, program_digest, program_files, program_fingerprint,
)
from stackwright.program.project import Project, load_project


def make(root: Path) -> Project:
    root.mkdir(parents=True)
    (root / "stackwright.yaml").write_text("name: proj\nmain: __main__.py\n")
    (root / "__main__.py").write_text("import stackwright as sw\n")
    (root / "templates").mkdir()
    (root / "templates" / "site.html").write_text("<h1>ID</h1>")
    return load_project(root)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make(tmp_path / "proj")


def test_the_workspace_file_name_is_the_workspace_modules() -> None:
    assert WORKSPACE_FILE == workspace.WORKSPACE_FILE


def test_every_file_of_the_program_counts_python_or_not(project: Project) -> None:
    fingerprint = program_fingerprint(project)
    assert sorted(fingerprint.files) == ["__main__.py", "stackwright.yaml", "templates/site.html"]
    before = fingerprint.files
    (project.root / "templates" / "site.html").write_text("<h1>EVIL ID</h1>")
    (project.root / "values.yaml").write_text("replicas: 3\n")
    (project.root / "__main__.py").unlink()
    after = program_fingerprint(project)
    assert after.digest != fingerprint.digest
    assert after.changes(before) == ["__main__.py removed", "templates/site.html changed", "values.yaml added"]


@pytest.mark.parametrize("relative", [
    "out/dev/index.html", "stacks/dev.yaml", ".stackwright/state.db", ".git/HEAD", "__pycache__/x.cpython-311.pyc",
    "node_modules/a/index.js", ".venv/lib/site.py", "templates/.site.html.swp", ".DS_Store", ".env",
    "allowed_signers", "lib/out/generated.py",
])
def test_what_is_not_part_of_the_program(project: Project, relative: str) -> None:
    before = program_digest(project)
    path = project.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("anything")
    assert program_digest(project) == before


def test_a_saved_plan_is_not_part_of_the_program_but_a_lookalike_is(project: Project) -> None:
    before = program_digest(project)
    plan = '{\n  "allow_destroy": false,\n  "created_at": "x",\n  "format": "stackwright-plan",\n  "version": 2\n}\n'
    (project.root / "prod.plan.json").write_text(plan)
    assert program_digest(project) == before
    (project.root / "data.json").write_text('{"format": "stackwright-plan"}')
    assert program_digest(project) != before


def test_the_digest_is_the_same_wherever_the_project_is(tmp_path: Path, project: Project) -> None:
    moved = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(project.root, moved)
    assert program_digest(load_project(moved)) == program_digest(project)


def test_moving_bytes_between_files_changes_the_digest(project: Project) -> None:
    """Each file counts by its own hash: re-splitting the same bytes is another program."""
    (project.root / "a.txt").write_bytes(b"X")
    (project.root / "b.txt").write_bytes(b"Y")
    before = program_digest(project)
    (project.root / "a.txt").write_bytes(b"X\0b.txt\0Y")
    (project.root / "b.txt").unlink()
    assert program_digest(project) != before


def test_shared_code_of_the_workspace_counts(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    project = make(root / "proj")
    (root / "lib").mkdir()
    (root / "lib" / "shared.py").write_text("def render(h):\n    return 'safe ' + h\n")
    (root / "lib" / "data.txt").write_text("shared data")
    (root / "unrelated.py").write_text("")
    before = program_fingerprint(project)
    assert before.files == program_fingerprint(project, ()).files  # no workspace yet
    (root / WORKSPACE_FILE).write_text("python_path: [lib]\nprojects:\n  - path: proj\n    stacks: [dev]\n")
    shared = program_fingerprint(project)
    assert shared.changes(before.files) == ["../lib/data.txt added", "../lib/shared.py added"]
    assert shared.digest == program_digest(project, [root / "lib"])
    (root / "lib" / "shared.py").write_text("def render(h):\n    return 'EVIL ' + h\n")
    assert program_fingerprint(project).changes(shared.files) == ["../lib/shared.py changed"]
    (root / "unrelated.py").write_text("# not on the path")
    assert program_fingerprint(project).changes(shared.files) == ["../lib/shared.py changed"]


def test_a_python_path_holding_the_project_counts_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    project = make(root / "proj")
    alone = program_fingerprint(project, ())
    (root / WORKSPACE_FILE).write_text("python_path: [.]\nprojects:\n  - path: proj\n    stacks: [dev]\n")
    files = program_fingerprint(project).files
    assert {k: v for k, v in files.items() if not k.startswith("../")} == alone.files
    assert sorted(k for k in files if k.startswith("../")) == ["../" + WORKSPACE_FILE]


def test_a_folder_linked_into_itself_is_read_once(project: Project) -> None:
    (project.root / "templates" / "loop").symlink_to(project.root / "templates")
    assert sorted(program_fingerprint(project).files) == [
        "__main__.py", "stackwright.yaml", "templates/site.html"]


def test_program_files_lists_the_project_file_first(project: Project) -> None:
    names = [p.relative_to(project.root).as_posix() for p in program_files(project)]
    assert names == ["stackwright.yaml", "__main__.py", "templates/site.html"]


def test_changes_name_each_file_once_in_path_order() -> None:
    now = ProgramDigest({"a": "1", "b": "2", "d": "4"})
    assert now.changes({"a": "1", "b": "0", "c": "3"}) == ["b changed", "c removed", "d added"]
    assert now.changes(now.files) == []
    assert ProgramDigest({"b": "2", "a": "1"}).digest == ProgramDigest({"a": "1", "b": "2"}).digest
