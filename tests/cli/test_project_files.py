"""Project files are checked against their schemas: a misspelled key or a value of the
wrong type fails the command in one or two lines naming the file, the line and the key
meant, instead of being ignored (a misspelled ``environments:`` once turned protection
off)."""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from stackwright.program.project import load_project, stack_settings
from stackwright.program.project_files import WORKSPACE_SCHEMA, check
from stackwright.workflow.environments import environment_for
from cli.conftest import CliProject, cli_env, run_cli

REPO = Path(__file__).resolve().parents[2]
PROGRAM = 'local.File("motd", path="motd.txt", content="hi")\n'


@pytest.fixture
def proj(project: Callable[..., CliProject]) -> CliProject:
    return project(PROGRAM)


def fails_at(proj: CliProject, *args: str) -> list[str]:
    """Run a command that must fail as a user error; its stderr lines."""
    err = proj.fails(*args)
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err
    return lines


def write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))


@pytest.mark.parametrize(("relative", "text", "where", "meant"), [
    ("stackwright.yaml", """\
        name: proj
        main: __main__.py
        enviroments:
          production: {protected: true}
        """, "stackwright.yaml:3", "environments"),
    ("stackwright.yaml", """\
        name: proj
        main: __main__.py
        environments:
          dev:
            required_approvals: 1
            protectd: true
        """, "stackwright.yaml:6", "protected"),
    ("stackwright.yaml", """\
        name: proj
        state:
          read_only: false
          ulr: sqlite:///other.db
        """, "stackwright.yaml:4", "url"),
    ("stacks/dev.yaml", """\
        config:
          anything: {goes: here}
        enviroment: production
        """, "stacks/dev.yaml:3", "environment"),
])
def test_a_misspelled_key_names_file_line_and_the_key_meant(
        proj: CliProject, relative: str, text: str, where: str, meant: str) -> None:
    write(proj.file(relative), text)
    for command in (["preview"], ["up", "--yes"]):
        headline, hint = fails_at(proj, *command)
        assert re.search(rf"\b{re.escape(where)}: unknown key '", headline), headline
        assert hint.strip() == f"hint: did you mean {meant!r}?"
    assert not proj.file("motd.txt").exists()


def test_a_value_of_the_wrong_type_names_the_key_and_the_value(proj: CliProject) -> None:
    write(proj.file("stackwright.yaml"), """\
        name: proj
        environments:
          dev:
            protected: true
            required_approvals: "one"
        """)
    (headline,) = fails_at(proj, "preview")
    assert "stackwright.yaml:5: `environments.dev.required_approvals`" in headline
    assert "valid integer" in headline and "'one'" in headline


def test_a_file_broken_after_a_passing_run_is_checked_again(proj: CliProject) -> None:
    """Passing content is recorded by its digest: an edit is never missed, and a record
    that was tampered with is not trusted."""
    records = proj.file(".stackwright/cache/checked")
    good = "name: proj\nmain: __main__.py\nenvironments:\n  dev: {required_approvals: 0}\n"
    proj.file("stackwright.yaml").write_text(good)
    proj.ok("preview")
    proj.ok("preview")
    assert any("required_approvals" in p.read_text() for p in records.iterdir())
    proj.file("stackwright.yaml").write_text(good.replace("required_approvals", "required_aprovals"))
    fails_at(proj, "preview")
    fails_at(proj, "preview")
    proj.file("stackwright.yaml").write_text(good)
    for record in records.iterdir():
        record.write_text("{")
    proj.ok("preview")
    shutil.rmtree(records)
    proj.file("stacks/dev.yaml").write_text("config: {}\nenvironment: 7\n")
    (headline,) = fails_at(proj, "preview")
    assert "stacks/dev.yaml:2: `environment`: input should be a valid string, not 7" in headline


def test_config_keys_are_the_programs_own(proj: CliProject) -> None:
    write(proj.file("stacks/dev.yaml"), """\
        secrets: local
        environment: dev
        config:
          enviroments: any key a program reads is allowed here
          nested: {protectd: [1, 2]}
        """)
    assert "1 to create" in proj.ok("preview")


def test_a_workspace_file_typo_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "app" / "stacks").mkdir(parents=True)
    (tmp_path / "app" / "stackwright.yaml").write_text("name: app\n")
    (tmp_path / "app" / "__main__.py").write_text("")
    (tmp_path / "app" / "stacks" / "dev.yaml").write_text("config: {}\n")
    write(tmp_path / "stackwright-workspace.yaml", """\
        projects:
          - path: app
            stacks:
              - {name: dev, depend_on: [app/dev]}
        """)
    code, out, err = run_cli(tmp_path, "run", "preview", "--all", env=cli_env())
    assert code == 1 and "Traceback" not in err, out + err
    headline, hint = err.strip().splitlines()
    assert "stackwright-workspace.yaml:4: unknown key 'depend_on' in `projects[0].stacks[0]`" in headline
    assert hint.strip() == "hint: did you mean 'depends_on'?"


# --- files that cannot be read ------------------------------------------------------------


def _a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _a_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_text("not a folder\n")


@pytest.mark.parametrize(("relative", "make", "said"), [
    ("stacks/dev.yaml", _a_folder, "stacks/dev.yaml: cannot read a stack file: it is a folder"),
    ("stackwright.yaml", _a_folder, "stackwright.yaml: cannot read the project file: it is a folder"),
    (".stackwright/current-stack", _a_folder,
     ".stackwright/current-stack: cannot read the selected stack's name: it is a folder"),
    ("stacks", _a_file, "stacks/dev.yaml: cannot read a stack file: a folder on its path is a file"),
])
def test_a_project_file_that_is_not_a_file_is_named(proj: CliProject, relative: str,
                                                     make: Callable[[Path], None], said: str) -> None:
    make(proj.root / relative)
    assert fails_at(proj, "preview")[0] == f"error: {said}"


def test_a_workspace_file_or_a_listed_project_file_that_is_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "app" / "stackwright.yaml").mkdir(parents=True)
    (tmp_path / "stackwright-workspace.yaml").write_text("projects:\n  - path: app\n")
    code, out, err = run_cli(tmp_path, "run", "preview", "--all", env=cli_env())
    assert code == 1 and "Traceback" not in err, out + err
    assert err.splitlines()[0] == ("error: stackwright-workspace.yaml:2: project 'app': "
                                   "app/stackwright.yaml: cannot read the project file: it is a folder")
    _a_folder(tmp_path / "stackwright-workspace.yaml")
    code, out, err = run_cli(tmp_path, "run", "preview", "--all", env=cli_env())
    assert code == 1 and "Traceback" not in err, out + err
    assert err.splitlines()[0] == "error: stackwright-workspace.yaml: cannot read the workspace file: it is a folder"


def _without_root_powers() -> list[str]:
    """What runs a command so that file permissions apply to it: nothing for a user,
    and for root, ``setpriv`` taking away the powers that bypass them."""
    import os

    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root reads every file, and setpriv is not there to take that away")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize(("relative", "said"), [
    ("stacks/dev.yaml", "stacks/dev.yaml: cannot read a stack file: permission denied"),
    ("stackwright.yaml", "stackwright.yaml: cannot read the project file: permission denied"),
    ("__main__.py", "__main__.py: cannot read the program: permission denied"),
])
def test_a_project_file_that_may_not_be_read_is_named(proj: CliProject, relative: str, said: str) -> None:
    import subprocess
    import sys

    (proj.root / relative).chmod(0)
    done = subprocess.run([*_without_root_powers(), sys.executable, "-m", "stackwright.cli.main", "preview"],
                          cwd=proj.root, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert done.stderr.splitlines()[0] == f"error: {said}"
    assert "readable" in done.stderr.splitlines()[1]


# --- what the docs show loads ---------------------------------------------------------


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.S)


def test_the_readmes_project_and_workspace_files_are_valid(tmp_path: Path) -> None:
    blocks = yaml_blocks(REPO / "README.md")
    project_block = next(b for b in blocks if b.startswith("environments:"))
    workspace_block = next(b for b in blocks if "projects:" in b)
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "stackwright.yaml").write_text("name: readme\n" + project_block)
    project = load_project(tmp_path)
    for name in yaml.safe_load(project_block)["environments"]:
        (tmp_path / "stacks").mkdir(exist_ok=True)
        (tmp_path / "stacks" / f"{name}.yaml").write_text("config: {}\n")
        assert environment_for(project, name).name == name
    content = workspace_block.encode()
    check(yaml.safe_load(content), content, "README.md", WORKSPACE_SCHEMA)


def test_the_example_platform_and_the_docs_stack_files_load(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples" / "platform", tmp_path / "platform")
    project = load_project(tmp_path / "platform")
    assert {"dev", "staging", "production"} <= set(project.stack_files())
    for stack in ("dev", "staging", "production"):
        assert stack_settings(project, stack)["config"]["platform"]["domain"]
        environment_for(project, stack)
    for doc in sorted((REPO / "docs").glob("*.md")):
        for block in yaml_blocks(doc):
            if block.lstrip("# \n").startswith("config:") or "\nconfig:" in block:
                (project.root / "stacks" / "doc.yaml").write_text(block)
                assert "config" in stack_settings(project, "doc"), doc
