"""Every command example in README.md and docs/*.md runs as written.

Conventions for the Markdown (each new docs/*.md page is picked up automatically):

- A fenced block whose info string starts with ``sh``, ``bash`` or ``shell`` is run. A
  ``console`` block is run too: its lines starting with ``$ `` are the commands, the
  other lines are output and are not checked.
- The runnable blocks of one document run in order in one bash session (``set -eo
  pipefail``). Each starts in the sandbox's root (the repository's root), unless its info
  string says ``continues``: then it goes on where the previous block left off (its
  folder and variables), as the next step of a walkthrough.
- Every command must succeed, including the first ones of an ``a && b`` list (which
  ``set -e`` alone would let pass); ``a || b`` succeeds when ``b`` does. Standard input is
  a terminal whose lines all say ``y``, so prompts are answered yes.
- Words after the language in the info string (GitHub highlights by the first word only,
  so readers see an ordinary block):
  - ``illustrative``: not run, for what cannot run here (real AWS, a remote database,
    ``make test`` itself). Use it rarely; a reviewer should ask why.
  - ``tested-by=PATH``: run by that test instead (which must exist and name the document).
  - ``needs=local-cloud``: the test starts the local cloud first (blocks that start it
    themselves need nothing).
- ``<!-- docs-test: setup ... -->``, an HTML comment readers do not see, holds commands
  that run before the next block: the context a page assumes (a project, a saved plan).
  It goes on where the previous block left off, and so does the block after it.

Isolation: each document runs in its own sandbox (a git repository holding a copy of
``examples/``, ``Makefile`` and ``tools/``; ``.venv`` links to this one), with its own
HOME (git identity ``alice@example.com``; the built Go tools linked from the real
``~/.cache/stackwright``), TMPDIR, and a free port for the local cloud, which is stopped
at the end, as is any local cluster the document started.
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^([ \t]*)```([^\n`]*)\n(.*?)^\1```[ \t]*$", re.S | re.M)
"""A fenced block, indented too (inside a list item): its lines lose that indent."""
SETUP = re.compile(r"<!--\s*docs-test:\s*setup\s*\n(.*?)-->", re.S)
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
CHECK = 'status=$?; [ "$status" -eq 0 ] || exit "$status"'
CONTINUED = ("\\", "&&", "||", "|")
CACHED_TOOLS = ("bin", "kube", "kwok")
TIMEOUT = 600

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    words: frozenset[str]
    code: str

    @property
    def runs(self) -> bool:
        return self.language in RUNNABLE and "illustrative" not in self.words and not self.tested_by

    @property
    def tested_by(self) -> str | None:
        return next((w.split("=", 1)[1] for w in self.words if w.startswith("tested-by=")), None)

    @property
    def commands(self) -> str:
        if self.language != "console":
            return self.code
        return "\n".join(line[2:] for line in self.code.splitlines() if line.startswith("$ "))


def blocks(text: str) -> list[Block]:
    """Fenced blocks and hidden setup comments, in document order."""
    found = []
    for match in FENCE.finditer(text):
        indent, info = match.group(1), match.group(2).split()
        language = info[0] if info else ""
        code = "".join(line.removeprefix(indent) for line in match.group(3).splitlines(keepends=True))
        found.append(Block(text.count("\n", 0, match.start()) + 1, language, frozenset(info[1:]), code))
    for match in SETUP.finditer(text):
        found.append(Block(text.count("\n", 0, match.start()) + 1, "sh", frozenset({"setup"}), match.group(1)))
    return sorted(found, key=lambda b: b.line)


def script(document: Path, runnable: list[Block]) -> str:
    """One bash script: every block, each announced on stderr with its line."""
    parts = ["set -eo pipefail", 'root="$PWD"']
    after_setup = False
    for block in runnable:
        parts.append(f"echo '>>> {document.name}:{block.line}' >&2")
        if not ({"continues", "setup"} & block.words or after_setup):
            parts.append('cd "$root"')
        after_setup = "setup" in block.words
        parts.append(checked(block.commands))
    return "\n".join(parts) + "\n"


def checked(code: str) -> str:
    """``code`` with the exit status checked after each complete command line, so that
    a failure inside an ``&&`` list stops the script too."""
    out: list[str] = []
    chunk: list[str] = []
    delimiter: str | None = None
    for line in code.splitlines():
        chunk.append(line)
        if delimiter is not None:
            delimiter = None if line.strip() == delimiter else delimiter
            if delimiter is not None:
                continue
        elif (heredoc := HEREDOC.search(line)) is not None:
            delimiter = heredoc.group(1)
            continue
        text = "\n".join(chunk)
        if line.split("#")[0].rstrip().endswith(CONTINUED) or not complete(text):
            continue
        out.extend([text, CHECK])
        chunk = []
    return "\n".join(out + chunk)


def complete(text: str) -> bool:
    """Whether ``text`` is whole shell commands (no open quote, ``if``, loop or brace)."""
    return subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True).returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sandbox(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A repository-shaped folder and the environment a reader's terminal would have."""
    work, home = tmp / "work", tmp / "home"
    work.mkdir()
    for name in ("examples", "tools"):
        shutil.copytree(ROOT / name, work / name)
    shutil.copy(ROOT / "Makefile", work / "Makefile")
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (work / ".gitignore").write_text(".venv\n")
    cache = home / ".cache" / "stackwright"
    cache.mkdir(parents=True)
    for name in CACHED_TOOLS:
        real = Path.home() / ".cache" / "stackwright" / name
        if real.exists():
            (cache / name).symlink_to(real)
    (tmp / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKWRIGHT_", "XDG_", "VIRTUAL_ENV", "PYTEST"))}
    env.update(HOME=str(home), TMPDIR=str(tmp / "tmp"), STACKWRIGHT_LOCAL_CLOUD_PORT=str(free_port()),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    subprocess.run(["git", "config", "--global", "user.email", "alice@example.com"], env=env, check=True)
    subprocess.run(["git", "config", "--global", "user.name", "Alice"], env=env, check=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=work, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "sandbox"], cwd=work, env=env, check=True)
    return work, env


def yes_terminal() -> tuple[int, int]:
    """(terminal, its other end): a pseudo-terminal without echo that has ``y`` lines
    waiting, since Stackwright asks for confirmation only on a terminal."""
    answers, terminal = pty.openpty()
    attributes = termios.tcgetattr(terminal)
    attributes[3] &= ~termios.ECHO
    termios.tcsetattr(terminal, termios.TCSANOW, attributes)
    os.write(answers, b"y\n" * 200)
    return terminal, answers


def stop_servers(env: dict[str, str], work: Path) -> None:
    for group in (["local-cloud", "stop"], ["local-cluster", "stop"]):
        subprocess.run([sys.executable, "-m", "stackwright.cli.main", *group], cwd=work, env=env,
                       capture_output=True, timeout=120)


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_every_command_example_runs_as_written(document: Path, tmp_path: Path) -> None:
    found = blocks(document.read_text())
    for block in found:
        if block.tested_by:
            test = ROOT / block.tested_by
            assert test.is_file() and document.name in test.read_text(), \
                f"{document.name}:{block.line}: {block.tested_by} does not test this document"
    runnable = [b for b in found if b.runs]
    if not runnable:
        return
    work, env = sandbox(tmp_path)
    if any("needs=local-cloud" in b.words for b in runnable):
        runnable.insert(0, Block(0, "sh", frozenset(), "stackwright local-cloud start >/dev/null"))
    terminal, answers = yes_terminal()
    try:
        done = subprocess.run(["bash", "-c", script(document, runnable)], cwd=work, env=env, stdin=terminal,
                              capture_output=True, text=True, timeout=TIMEOUT, start_new_session=True)
    finally:
        os.close(terminal)
        os.close(answers)
        stop_servers(env, work)
    if done.returncode != 0:
        where = re.findall(r"^>>> (\S+)$", done.stderr, re.M)
        pytest.fail(f"{where[-1] if where else document.name}: the example failed (exit {done.returncode})\n"
                    f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}")


def test_the_conventions_are_read_as_documented() -> None:
    text = ("```sh\nstackwright preview\n```\n\n```sh illustrative\nmake test\n```\n\n"
            "<!-- docs-test: setup\nstackwright new shop\n-->\n```console\n$ stackwright up\nUpdating\n```\n"
            "```sh tested-by=tests/aws/test_cloudformation_docs.py\nstackwright up\n```\n```yaml\na: 1\n```\n")
    found = blocks(text)
    assert [(b.line, b.runs) for b in found] == [(1, True), (5, False), (9, True), (12, True), (16, False),
                                                  (19, False)]
    assert found[3].commands == "stackwright up"
    assert "setup" in found[2].words and found[2].commands == "stackwright new shop\n"


def test_a_block_indented_in_a_list_item_runs_without_its_indent() -> None:
    text = "1. *Merge*:\n\n   ```sh continues\n   stackwright plan --out p.plan\n     --diff\n   ```\n\n2. Done.\n"
    [block] = blocks(text)
    assert block.runs and "continues" in block.words
    assert block.commands == "stackwright plan --out p.plan\n  --diff\n"


def test_a_failure_inside_an_and_list_stops_the_script(tmp_path: Path) -> None:
    code = "false && echo never\necho after\nif true; then\n  echo in\nfi\ncat <<'EOF'\nx && y\nEOF\n"
    text = checked(code)
    assert text.count(CHECK) == 4
    done = subprocess.run(["bash", "-c", "set -eo pipefail\n" + text], capture_output=True, text=True)
    assert done.returncode == 1 and "after" not in done.stdout
    done = subprocess.run(["bash", "-c", "set -eo pipefail\n" + checked("false || echo fine\necho after")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "fine\nafter\n"
