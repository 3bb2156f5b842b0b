"""What the program digest a saved plan pins covers (program/digest.py, docs/plan-file.md
check 3): every file that lives with the code, Python or not, and the workspace's shared
``python_path`` code; not the state, outputs, config, trust file, dot-files or plans."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from stackwright.program import workspace
from stackwright.program.digest import (
    PLAN_FORMAT, SIGNERS_FILE, WORKSPACE_FILE, ProgramDigest, is_plan_file, program_digest, program_files,
    program_fingerprint,
)
from stackwright.program.project import Project, load_project
from stackwright.workflow import plan_file, signing

PLAN_HEAD = '{\n  "format": "stackwright-plan",\n  "x": 1}\n'
"""How a saved plan starts; also a Python expression statement."""


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
    "out/dev/index.html", "out/x.py", "stacks/dev.yaml", "stacks/production.yaml",
    ".stackwright/state.db", ".git/HEAD", "lib/.cache/x.py", ".venv/lib/site.py",
    "__pycache__/x.cpython-311.pyc", "lib/__pycache__/r.cpython-311.pyc",
    "node_modules/a/index.js", "lib/node_modules/a/index.js", "venv/lib/site.py", "lib/venv/x.py",
    "templates/.site.html.swp", ".DS_Store", ".env", "allowed_signers",
])
def test_what_is_not_part_of_the_program(project: Project, relative: str) -> None:
    before = program_digest(project)
    path = project.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("anything")
    assert program_digest(project) == before


@pytest.mark.parametrize("relative", [
    "lib/stacks/render.py", "lib/out/generated.py", "templates/stacks/dev.yaml", "stacks/helpers.py",
    "stacks/lib/values.yaml", "stacks/dev.yml", "stacks/README.md", "out.py", "templates/allowed_signers",
    "lib/x.pyc", "lib/site-packages/x.py",
])
def test_folders_named_as_output_or_config_below_the_top_are_part_of_the_program(
        project: Project, relative: str) -> None:
    """``out`` and ``stacks`` are skipped only where Stackwright puts them (top-level
    ``out/`` and ``stacks/*.yaml``), ``allowed_signers`` only where it is trust."""
    before = program_fingerprint(project)
    path = project.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("anything")
    assert program_fingerprint(project).changes(before.files) == [f"{relative} added"]


def test_a_nested_project_folder_in_the_project_is_covered_whole(project: Project) -> None:
    before = program_fingerprint(project)
    for relative in ("sub/stackwright.yaml", "sub/out/x.py", "sub/stacks/dev.yaml"):
        (project.root / relative).parent.mkdir(parents=True, exist_ok=True)
        (project.root / relative).write_text("x")
    assert program_fingerprint(project).changes(before.files) == [
        "sub/out/x.py added", "sub/stacks/dev.yaml added", "sub/stackwright.yaml added"]


def test_a_folder_linked_as_stacks_is_still_covered_where_it_is(project: Project) -> None:
    (project.root / "lib").mkdir()
    (project.root / "lib" / "values.yaml").write_text("a: 1\n")
    (project.root / "stacks").symlink_to(project.root / "lib")
    assert "lib/values.yaml" in program_fingerprint(project).files


def a_plan_document() -> dict[str, object]:
    doc: dict[str, object] = {"format": plan_file.FORMAT, "version": plan_file.VERSION, "id": "1",
                              "allow_destroy": False, "created_at": "x", "created_by": "a@example.com",
                              "environment": "dev", "summary": {}, "violations": [],
                              "plan": {"format": 1, "stack": "dev", "steps": [], "note": "caf\u00e9"}}
    doc["hash"] = plan_file.content_hash(doc)
    return doc


def test_a_saved_plan_is_not_part_of_the_program(project: Project) -> None:
    before = program_digest(project)
    plan_file.write_plan_file(project.root / "prod.plan.json", a_plan_document())
    plan_file.write_plan_file(project.root / "plans" / "dev.plan", a_plan_document())
    assert program_digest(project) == before
    assert is_plan_file((project.root / "prod.plan.json").read_bytes())


@pytest.mark.parametrize("name, content", [
    ("helper.py", PLAN_HEAD + "def render(x):\n    return x\n"),
    ("helper.txt", PLAN_HEAD + "def render(x):\n    return x\n"),
    ("data.json", '{"format": "stackwright-plan"}'),
    ("plan.py", plan_file.render(a_plan_document()).decode()),  # a .py file is never a plan
    ("trailing.plan", plan_file.render(a_plan_document()).decode() + "import os\n"),
    ("truncated.plan", plan_file.render(a_plan_document()).decode()[:-3]),
    ("leading.plan", "x = 1\n" + plan_file.render(a_plan_document()).decode()),
    ("not-ascii.plan", plan_file.render(a_plan_document()).decode().replace("caf\\u00e9", "caf\u00e9")),
    ("no-plan.plan", '{\n  "format": "stackwright-plan",\n  "hash": "x"\n}\n'),
])
def test_a_file_that_only_looks_like_a_saved_plan_is_part_of_the_program(
        project: Project, name: str, content: str) -> None:
    before = program_fingerprint(project)
    (project.root / name).write_text(content)
    assert program_fingerprint(project).changes(before.files) == [f"{name} added"]


def test_the_names_kept_here_are_those_of_the_modules_that_own_them() -> None:
    assert (PLAN_FORMAT, SIGNERS_FILE) == (plan_file.FORMAT, signing.SIGNERS_FILE)


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


def docs_examples() -> list[tuple[str, bool]]:
    """(path relative to the workspace root, covered) from docs/plan-file.md's table."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "plan-file.md").read_text()
    table = text.split("<!-- digest-examples -->\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines()[2:]]
    return [(path, covered.strip() == "yes") for paths, covered in rows
            for path in re.findall(r"`((?:proj/|lib/|other/|allowed_signers)[^`\s]*)`", paths)]


def test_the_examples_of_docs_plan_file_md_hold(tmp_path: Path) -> None:
    """A project ``proj`` in a workspace with ``python_path: [lib, .]`` beside another
    project ``other``."""
    examples = docs_examples()
    assert len(examples) > 30 and {covered for _, covered in examples} == {True, False}
    root = tmp_path / "ws"
    project = make(root / "proj")
    (root / "other").mkdir()
    (root / "other" / "stackwright.yaml").write_text("name: other\n")
    (root / "lib").mkdir()
    python_path = [root / "lib", root]
    before = program_fingerprint(project, python_path).files
    for relative, _ in examples:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative.endswith(".plan.json"):
            plan_file.write_plan_file(path, a_plan_document())
        elif relative == "proj/helper.py":
            path.write_text(PLAN_HEAD + "def render(x):\n    return x\n")
        elif path.exists():
            path.write_text(path.read_text() + "# changed\n")
        else:
            path.write_text("anything")
    changed = {change.rsplit(" ", 1)[0] for change in program_fingerprint(project, python_path).changes(before)}
    assert changed == {label(relative) for relative, covered in examples if covered}


def label(relative: str) -> str:
    """A path relative to the workspace root as the digest labels it (relative to ``proj``)."""
    return relative.removeprefix("proj/") if relative.startswith("proj/") else f"../{relative}"
