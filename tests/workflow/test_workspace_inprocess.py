"""`stackwright run` runs every stack in its own process: no child process, no change
of the working directory or the environment, and programs that do not see each
other's modules.

The workspace: projects ``alpha`` and ``beta`` both have a ``helpers.py`` (with
different contents); ``beta/{stack}`` reads ``alpha/{stack}``'s output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackwright.cli.main import cli
from stackwright.state.sqlite import SqliteStateStore

WORKSPACE = """\
projects:
  - path: alpha
    stacks: [dev, prod]
  - path: beta
    depends_on: ["alpha/{stack}"]
    stacks: [dev, prod]
"""

ALPHA = """\
import stackwright as sw
from stackwright.providers import local
import helpers

local.File("marker", path=f"out/{sw.get_stack()}.txt", content=helpers.NAME)
sw.export("name", helpers.NAME)
"""

BETA = """\
import stackwright as sw
from stackwright.providers import local
import helpers

alpha = sw.StackReference(f"alpha/{sw.get_stack()}")
local.File("marker", path=f"out/{sw.get_stack()}.txt",
           content=sw.fmt("{} after {}", helpers.NAME, alpha.output("name")))
sw.export("name", helpers.NAME)
"""


def write_workspace(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "stackwright-workspace.yaml").write_text(WORKSPACE)
    for project, program in (("alpha", ALPHA), ("beta", BETA)):
        folder = root / project
        (folder / "stacks").mkdir(parents=True)
        (folder / "stackwright.yaml").write_text(f"name: {project}\n")
        (folder / "__main__.py").write_text(program)
        (folder / "helpers.py").write_text(f"NAME = {project!r}\n")
        for stack in ("dev", "prod"):
            (folder / "stacks" / f"{stack}.yaml").write_text("config: {}\n")
    return root


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace, as the working directory, with child processes forbidden."""
    root = write_workspace(tmp_path / "ws")
    monkeypatch.chdir(root)
    monkeypatch.delenv("STACKWRIGHT_STACK", raising=False)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a child process was started: {args!r}")

    monkeypatch.setattr(subprocess.Popen, "__init__", forbidden)
    monkeypatch.setattr(os, "fork", forbidden)
    monkeypatch.setattr(os, "posix_spawn", forbidden)
    return root


def stackwright(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The CLI, called in this process; its exit code and output."""
    try:
        cli.main(args=list(args), prog_name="stackwright", standalone_mode=False)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def outputs(root: Path, ref: str) -> dict[str, Any]:
    project, stack = ref.split("/")
    store = SqliteStateStore(root / project / ".stackwright" / "state.db")
    try:
        return dict(store.snapshot(stack).outputs)
    finally:
        store.close()


def test_run_up_runs_every_stack_in_this_process(workspace: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    environ, cwd = dict(os.environ), os.getcwd()
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    assert "run up: 4 stack(s)" in out and "4 ok" in out
    assert dict(os.environ) == environ and os.getcwd() == cwd
    assert (workspace / "beta" / "out" / "prod.txt").read_text() == "beta after alpha"
    assert outputs(workspace, "alpha/dev") == {"name": "alpha"}
    assert outputs(workspace, "beta/dev") == {"name": "beta"}


def test_same_named_modules_of_two_projects_stay_apart(workspace: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out = stackwright("run", "preview", "--all", "--as", "tester", capsys=capsys)
    assert code == 0, out
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    assert (workspace / "alpha" / "out" / "dev.txt").read_text() == "alpha"
    assert (workspace / "beta" / "out" / "dev.txt").read_text() == "beta after alpha"
    assert "helpers" not in sys.modules


def test_a_fresh_workspace_previews_every_stack(workspace: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out = stackwright("run", "preview", "--all", "--as", "tester", capsys=capsys)
    assert code == 0, out
    assert "run preview: 4 stack(s)" in out and "4 ok" in out
    assert out.count("is not initialized yet") == 4
    for project in ("alpha", "beta"):
        store = SqliteStateStore(workspace / project / ".stackwright" / "state.db")
        try:
            assert store.list_stacks() == [], "a preview creates no stack"
        finally:
            store.close()


def test_run_up_leaves_each_projects_selected_stack(workspace: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out = stackwright("-C", "alpha", "stack", "init", "dev", capsys=capsys)
    assert code == 0, out
    os.chdir(workspace)
    code, out = stackwright("-C", "alpha", "stack", "select", "dev", capsys=capsys)
    assert code == 0, out
    os.chdir(workspace)
    marker = workspace / "alpha" / ".stackwright" / "current-stack"
    assert marker.read_text().strip() == "dev"
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    assert marker.read_text().strip() == "dev"
    assert not (workspace / "beta" / ".stackwright" / "current-stack").exists()


def test_destroy_goes_dependents_first(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    code, out = stackwright("run", "destroy", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    order = [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("... ")]
    assert order.index("beta/prod") < order.index("alpha/prod")
    assert order.index("beta/dev") < order.index("alpha/dev")
    for ref in ("alpha/dev", "alpha/prod", "beta/dev", "beta/prod"):
        project, stack = ref.split("/")
        store = SqliteStateStore(workspace / project / ".stackwright" / "state.db")
        try:
            assert store.snapshot(stack).resources == {}
            assert store.history(stack)[-1].kind == "destroy"
        finally:
            store.close()
    assert not (workspace / "alpha" / "out" / "dev.txt").exists()


def test_a_passphrase_key_is_derived_once_per_project_in_a_run(
        workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from stackwright.operations.keyring import derive_passphrase_key

    for project in ("alpha", "beta"):
        program = workspace / project / "__main__.py"
        program.write_text(program.read_text() + 'sw.export("token", sw.secret("s3cr3t"))\n')
    monkeypatch.setenv("STACKWRIGHT_PASSPHRASE", "correct horse")
    derive_passphrase_key.cache_clear()
    derived: list[bytes] = []
    scrypt = hashlib.scrypt

    def counting(password: bytes, **kwargs: Any) -> bytes:
        derived.append(kwargs["salt"])
        return scrypt(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    assert "s3cr3t" not in out
    assert len(derived) == 2, "one key per project, whatever the number of stacks"


def test_a_run_reads_a_referenced_stack_from_the_state(workspace: Path) -> None:
    """A stack run alone reads the stack it references from that stack's state: unknown
    while it was never applied, then its recorded outputs, a secret one still secret
    (opened with the referenced stack's own key)."""
    from stackwright.model.values import Secret
    from stackwright.workflow.multistack import RunOptions, StackRunner, initialize
    from stackwright.workflow.workspace import load_workspace

    program = workspace / "alpha" / "__main__.py"
    program.write_text(program.read_text() + 'sw.export("token", sw.secret("s3cr3t"))\n')
    loaded = load_workspace(workspace / "stackwright-workspace.yaml")
    initialize(loaded, ["alpha/dev", "beta/dev"])
    with StackRunner(loaded, RunOptions("preview", "tester")) as runner:
        assert runner.run("beta/dev").ok
        assert "alpha/dev" not in runner.known, "never applied: its outputs are unknown"
    with StackRunner(loaded, RunOptions("up", "tester")) as runner:
        assert runner.run("alpha/dev").ok
    with StackRunner(loaded, RunOptions("up", "tester")) as runner:
        assert runner.run("beta/dev").ok
        read = runner.known["alpha/dev"]
    assert read["name"] == "alpha" and isinstance(read["token"], Secret)
    assert read["token"].value == "s3cr3t"
    assert (workspace / "beta" / "out" / "dev.txt").read_text() == "beta after alpha"


def test_what_a_program_changes_in_the_process_is_undone_when_it_ends(
        workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A program that sets ``AWS_PROFILE`` for itself (here ``REVIEW_PROFILE``), changes
    folder or extends ``sys.path`` must not choose what the stacks after it see: each
    stack of `run up` sees the process as `up` in its project would, and so do the
    callbacks applying the program's own plan."""
    monkeypatch.setenv("REVIEW_PROFILE", "as started")
    alpha = workspace / "alpha" / "__main__.py"
    alpha.write_text(alpha.read_text() + (
        "import os, sys\n"
        "from stackwright.providers import random\n"
        "os.environ['REVIEW_PROFILE'] = 'alpha-account'\n"
        "os.environ['REVIEW_ONLY_ALPHA'] = 'set'\n"
        "os.chdir('/')\n"
        "sys.path.append('/alpha-lib')\n"
        "seen = random.Id('seen', byte_length=2).hex.apply(lambda _: os.environ['REVIEW_PROFILE'])\n"
        "sw.export('seen_at_apply', seen)\n"))
    beta = workspace / "beta" / "__main__.py"
    beta.write_text(beta.read_text() + (
        "import os, sys\n"
        "sw.export('seen', [os.environ.get('REVIEW_PROFILE'), os.environ.get('REVIEW_ONLY_ALPHA'),\n"
        "                   os.getcwd(), '/alpha-lib' in sys.path])\n"))
    environ, cwd, path = dict(os.environ), os.getcwd(), list(sys.path)
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 0, out
    assert outputs(workspace, "beta/dev")["seen"] == ["as started", None, str(workspace), False]
    assert outputs(workspace, "alpha/dev")["seen_at_apply"] == "as started"
    assert dict(os.environ) == environ and os.getcwd() == cwd and sys.path == path


def test_a_callback_that_exits_fails_its_stack_and_skips_its_dependents(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alpha = workspace / "alpha" / "__main__.py"
    alpha.write_text(alpha.read_text() + (
        "import sys\n"
        "from stackwright.providers import random\n"
        "local.File('late', path='late.txt',\n"
        "           content=random.Id('r', byte_length=2).hex.apply(lambda _: sys.exit(0)))  # the exit\n"))
    line = next(n for n, text in enumerate(alpha.read_text().splitlines(), 1) if "# the exit" in text)
    code, out = stackwright("run", "up", "--all", "--yes", "--as", "tester", capsys=capsys)
    assert code == 1, out
    assert f"__main__.py:{line}: an Output callback called exit(0)" in out
    assert "run up: 4 stack(s)" in out and "2 failed" in out and "2 skipped" in out
