"""What a command loads before it does anything: `import stackwright` and `stackwright
--help` load only the model and the CLI's command definitions, and an `up` or `preview`
with nothing to change loads neither PyYAML nor pydantic (project files already
checked) nor asyncio (nothing to run). Each heavy library costs a command tens of milliseconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("pydantic", "pydantic_core", "asyncio", "boto3", "botocore", "psycopg", "lightkube",
         "rich", "ruamel", "cryptography", "pyrage", "yaml", "sqlite3", "ssl", "httpx")
"""Libraries no start-up path below may load."""

REPORT = textwrap.dedent("""\
    import atexit, json, sys
    before = set(sys.modules)
    target = sys.argv.pop(1)
    def report():
        with open(target, "w") as out:
            json.dump(sorted(set(sys.modules) - before), out)
    atexit.register(report)
    """)


def loaded(tmp_path: Path, code: str, *args: str, cwd: Path | None = None) -> list[str]:
    """The modules a fresh interpreter loads running ``code`` (besides its own start-up)."""
    target = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", REPORT + code, str(target), *args],
                          cwd=cwd or tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    modules: list[str] = json.loads(target.read_text())
    return modules


def tops(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def ours(modules: list[str]) -> set[str]:
    """Our modules, by subpackage (``stackwright.cli``, ``stackwright.model``...)."""
    return {".".join(m.split(".")[:2]) for m in modules if m.startswith("stackwright")}


CLI = "import sys\nfrom stackwright.cli.main import main\nsys.argv[0] = 'stackwright'\nmain()\n"


def test_import_stackwright_loads_the_model_only(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "import stackwright")
    assert ours(modules) == {"stackwright", "stackwright.errors", "stackwright.dataclass_methods", "stackwright.model"}
    assert not tops(modules) & set(HEAVY)
    assert "click" not in tops(modules)


def test_help_loads_the_command_definitions_only(tmp_path: Path) -> None:
    modules = loaded(tmp_path, CLI, "--help")
    assert ours(modules) == {"stackwright", "stackwright.errors", "stackwright.dataclass_methods", "stackwright.model",
                             "stackwright.cli"}
    assert not tops(modules) & set(HEAVY)


ONLY_ON_ERROR_OR_WRITE = ("difflib", "traceback", "tempfile", "shutil", "bz2", "lzma", "getpass", "subprocess")
"""Standard modules a preview with nothing wrong has no use for: close-match hints and
tracebacks are for errors, temporary files for writing keys and checks, `git` and the
login name for finding the user when STACKWRIGHT_USER does not say."""


def test_a_preview_loads_no_module_only_errors_or_writes_use(tmp_path: Path) -> None:
    root = tiny_project(tmp_path)
    (root / "__main__.py").write_text("from stackwright.providers import random\n"
                                      "for n in range(3):\n    random.Id(f'tag-{n}', byte_length=4)\n")
    loaded(tmp_path, CLI, "up", "--yes", cwd=root)
    modules = loaded(tmp_path, f"import os\nos.environ['STACKWRIGHT_USER'] = 'ci'\n{CLI}", "preview", cwd=root)
    assert "stackwright.program.runner" in modules
    assert not set(ONLY_ON_ERROR_OR_WRITE) & tops(modules), sorted(set(ONLY_ON_ERROR_OR_WRITE) & tops(modules))


def tiny_project(tmp_path: Path) -> Path:
    """A stack of two in-process resources (random.Id, local.File), initialised."""
    root = tmp_path / "tiny"
    (root / "stacks").mkdir(parents=True)
    (root / "stackwright.yaml").write_text("name: tiny\nenvironments:\n  dev: {}\n")
    (root / "stacks" / "dev.yaml").write_text("config: {}\n")
    (root / "__main__.py").write_text(
        "import stackwright as sw\nfrom stackwright.providers import local, random\n"
        "tag = random.Id('tag', byte_length=4)\n"
        "local.File('f', path='f.txt', content=sw.fmt('{}', tag.hex))\n")
    loaded(tmp_path, CLI, "stack", "init", "dev", cwd=root)
    return root


def test_an_up_of_in_process_resources_runs_without_asyncio_or_threads(tmp_path: Path) -> None:
    """Creating two local resources applies them one after the other, without an event
    loop or a thread pool, and loads the `up` command's module only."""
    root = tiny_project(tmp_path)
    loaded(tmp_path, CLI, "preview", cwd=root)  # the project files' first check loads pydantic
    modules = loaded(tmp_path, CLI, "up", "--yes", cwd=root)
    assert (root / "f.txt").read_text()
    assert not {"asyncio", "concurrent", "pydantic", "yaml"} & tops(modules), sorted(tops(modules))
    commands = {m for m in modules if m.startswith("stackwright.cli.commands_")}
    assert commands == {"stackwright.cli.commands_update"}


def test_the_command_table_names_every_command_its_modules_register() -> None:
    import importlib

    import click

    from stackwright.cli.main import COMMANDS, EXTENSIONS

    for module in set(COMMANDS.values()) | set(EXTENSIONS.values()):
        group = click.Group()
        if module in EXTENSIONS.values():
            group.add_command(click.Group("state"))
        importlib.import_module(f"stackwright.cli.{module}").register(group)
        if module not in EXTENSIONS.values():
            assert {name for name, owner in COMMANDS.items() if owner == module} == set(group.commands)


@pytest.mark.parametrize("command", [("up", "--yes"), ("preview",)])
def test_a_command_with_nothing_to_do_loads_no_pydantic_and_no_asyncio(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    root = tiny_project(tmp_path)
    loaded(tmp_path, CLI, "up", "--yes", cwd=root)
    modules = loaded(tmp_path, CLI, *command, cwd=root)
    assert {"pydantic", "asyncio", "yaml"}.isdisjoint(tops(modules)), sorted(tops(modules))
    assert not {"rich", "boto3", "botocore", "ssl"} & tops(modules)


def test_a_preview_loads_no_part_of_the_apply_engine(tmp_path: Path) -> None:
    """A preview plans; applying, recovering and reading live objects are loaded by
    the commands that do them."""
    root = tiny_project(tmp_path)
    loaded(tmp_path, CLI, "up", "--yes", cwd=root)
    modules = loaded(tmp_path, CLI, "preview", cwd=root)
    assert "stackwright.plan.planner" in modules
    engine = {m for m in modules if m.startswith("stackwright.engine.")}
    assert engine <= {"stackwright.engine.events"}, sorted(engine)


NOT_FOR_A_PLAIN_UP = ("stackwright.program.workspace", "stackwright.engine.refresh", "stackwright.operations.rollback",
                      "socket", "subprocess", "getpass")
"""What an `up` with no workspace file, no drift to read, nothing to roll back, a lock to
take and STACKWRIGHT_USER set has no use for."""


def test_a_plain_up_loads_only_what_it_uses(tmp_path: Path) -> None:
    """Creating the resources judges the plan by the policies; changing nothing does not
    load them, nor the file writes of the local provider."""
    root = tiny_project(tmp_path)
    loaded(tmp_path, CLI, "preview", cwd=root)
    user = f"import os\nos.environ['STACKWRIGHT_USER'] = 'ci'\n{CLI}"
    creating = loaded(tmp_path, user, "up", "--yes", cwd=root)
    assert (root / "f.txt").is_file()
    assert not set(NOT_FOR_A_PLAIN_UP) & set(creating), sorted(set(NOT_FOR_A_PLAIN_UP) & set(creating))
    assert "stackwright.workflow.policies" in creating
    unchanged = loaded(tmp_path, user, "up", "--yes", cwd=root)
    assert not {"stackwright.workflow.policies", "tempfile", *NOT_FOR_A_PLAIN_UP} & set(unchanged)


def test_a_preview_finds_no_user_it_does_not_record(tmp_path: Path) -> None:
    """Without STACKWRIGHT_USER, who is acting is git's user.email: asked only by what
    records it (an `up`), never by a preview."""
    root = tiny_project(tmp_path)
    loaded(tmp_path, CLI, "up", "--yes", cwd=root)
    unset = f"import os\nos.environ.pop('STACKWRIGHT_USER', None)\n{CLI}"
    assert "subprocess" not in loaded(tmp_path, unset, "preview", cwd=root)
    assert "subprocess" in loaded(tmp_path, unset, "up", "--yes", cwd=root)


def test_a_project_in_a_workspace_still_finds_it(tmp_path: Path) -> None:
    """The workspace module is loaded only when a workspace file is there, looked for
    under the name the workspace module gives it."""
    from stackwright.operations.workspace_links import WORKSPACE_FILE, find_workspace
    from stackwright.program import workspace

    assert WORKSPACE_FILE == workspace.WORKSPACE_FILE
    root = tiny_project(tmp_path)
    assert find_workspace(root) is None
    (tmp_path / WORKSPACE_FILE).write_text("projects:\n  - path: tiny\n    stacks: [dev]\n")
    found = find_workspace(root / "stacks")
    assert found is not None and found.project_at(root) is not None


def test_a_run_of_every_stack_reads_no_program_for_its_imports(tmp_path: Path) -> None:
    """Only `run --changed-since` follows what the programs import (``workflow.local_imports``)."""
    tiny_project(tmp_path)
    (tmp_path / "stackwright-workspace.yaml").write_text("projects:\n  - path: tiny\n    stacks: [dev]\n")
    user = f"import os\nos.environ['STACKWRIGHT_USER'] = 'ci'\n{CLI}"
    modules = loaded(tmp_path, user, "run", "up", "--all", "--yes", cwd=tmp_path)
    assert (tmp_path / "tiny" / "f.txt").is_file()
    assert "stackwright.workflow.workspace" in modules
    assert "stackwright.workflow.local_imports" not in modules
