"""Helpers for driving the real `stackwright` command in a throwaway project.

``project(program, config)`` writes ``stackwright.yaml``, the program and
``stacks/dev.yaml`` into ``tmp_path``, runs ``stackwright stack init dev`` and returns
a ``CliProject`` whose ``run(*args)`` runs the CLI in a subprocess and returns
``(exit code, stdout, stderr)``.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT_NAME = "proj"
_UNAUDITED = {"events": "WHERE kind != 'attempt' ORDER BY id", "sqlite_sequence": "WHERE name != 'events'"}
"""``state_rows``: the rows of each table left out (failed attempts), in a stable order."""
HEADER = "import stackwright as sw\nfrom stackwright.providers import local, random\n"


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("STACKWRIGHT_STACK", "STACKWRIGHT_DEBUG", "STACKWRIGHT_USER")}
    env["STACKWRIGHT_USER"] = "tester"
    env.update(extra)
    return env


def run_cli(cwd: Path, *args: str, env: Mapping[str, str] | None = None,
            timeout: float = 60) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "stackwright.cli.main", *args],
        cwd=cwd, env=dict(env or cli_env()), capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=timeout,
    )
    return done.returncode, done.stdout, done.stderr


class CliProject:
    def __init__(self, root: Path) -> None:
        self.root = root

    # --- running -------------------------------------------------------------------
    def run(self, *args: str, **env: str) -> tuple[int, str, str]:
        return run_cli(self.root, *args, env=cli_env(**env))

    def ok(self, *args: str, **env: str) -> str:
        """Run and require success; the stdout."""
        code, out, err = self.run(*args, **env)
        assert code == 0, f"stackwright {' '.join(args)} failed ({code}):\n{out}\n{err}"
        assert "Traceback" not in err, err
        return out

    def fails(self, *args: str, **env: str) -> str:
        """Run and require a clean user error: exit 1, no traceback; the stderr."""
        code, out, err = self.run(*args, **env)
        assert code == 1, f"expected exit 1, got {code}:\n{out}\n{err}"
        assert "Traceback" not in err + out, err
        assert "error:" in err, err
        return err

    # --- files ---------------------------------------------------------------------
    @property
    def program(self) -> Path:
        return self.root / "__main__.py"

    @property
    def db(self) -> Path:
        return self.root / ".stackwright" / "state.db"

    def write_program(self, text: str, header: bool = True) -> None:
        self.program.write_text((HEADER if header else "") + textwrap.dedent(text))

    def append_program(self, text: str) -> None:
        self.program.write_text(self.program.read_text() + "\n" + textwrap.dedent(text))

    def line_of(self, marker: str) -> int:
        """The 1-based line of the program that contains ``marker``."""
        for number, line in enumerate(self.program.read_text().splitlines(), 1):
            if marker in line:
                return number
        raise AssertionError(f"{marker!r} not in the program")

    def write_config(self, config: Mapping[str, Any], stack: str = "dev") -> None:
        path = self.root / "stacks" / f"{stack}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump({"config": dict(config)}))

    def file(self, relative: str) -> Path:
        return self.root / relative

    def store(self, stack: str | None = None) -> Any:
        """The project's state store, opened as the CLI opens it (with the key that
        reads its secrets)."""
        from stackwright.operations.session import open_store
        from stackwright.program.project import load_project

        return open_store(load_project(self.root), stack)

    def db_bytes(self) -> bytes:
        return self.db.read_bytes()

    def state_rows(self) -> Any:
        """What "nothing changed" compares now that a change that fails is audited: every
        row of every table of the state file but the audit events of failed attempts
        (and the counter that numbers events); the bytes of a file that is no database."""
        try:
            with closing(sqlite3.connect(self.db)) as conn:
                tables = [row[0] for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
                return {table: conn.execute(f"SELECT * FROM {table} {_UNAUDITED.get(table, '')}").fetchall()
                        for table in tables}
        except sqlite3.DatabaseError:
            return self.db_bytes()

    def attempts(self) -> int:
        """How many failed attempts the state file's audit log records."""
        try:
            with closing(sqlite3.connect(self.db)) as conn:
                return int(conn.execute("SELECT count(*) FROM events WHERE kind = 'attempt'").fetchone()[0])
        except sqlite3.DatabaseError:
            return 0

    def tree(self) -> dict[str, str]:
        """Every file under the project (state files included) and a hash of its bytes;
        not caches (``.stackwright/cache/``: helm renders, records of checked files),
        which any command may fill and anyone may delete."""
        out = {}
        cache = self.root / ".stackwright" / "cache"
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and not path.is_relative_to(cache):
                out[str(path.relative_to(self.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        return out

    def urn(self, type_token: str, path: str, stack: str = "dev") -> str:
        return f"{stack}::{PROJECT_NAME}::{type_token}::{path}"


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., CliProject]:
    """``project(program, config=None)``: a project with stack ``dev`` created and selected.

    ``program`` is dedented and, unless ``header=False``, prefixed with
    ``import stackwright as sw`` and the ``local``/``random`` provider imports.
    """

    def make(program: str, config: Mapping[str, Any] | None = None, *,
             header: bool = True) -> CliProject:
        root = tmp_path / PROJECT_NAME
        root.mkdir()
        (root / "stackwright.yaml").write_text(f"name: {PROJECT_NAME}\nmain: __main__.py\n")
        proj = CliProject(root)
        proj.write_program(program, header=header)
        proj.write_config(config or {})
        proj.ok("stack", "init", "dev")
        return proj

    return make
