"""No secret in plain text anywhere Stackwright writes or prints.

A project whose program uses a secret from config (set with `config set --secret`) and
a generated password, at top level and nested in lists and dicts, goes through every
command. Then every artifact is searched for each secret's plain text: everything the
commands printed, every file under the project (state and plan files, stack files, the
generated CI workflows), and the state database with its checkpoints decompressed.
The only places a secret may show are the managed files themselves (``out/``, the
infrastructure) and the commands asked to reveal it (``--show-secrets``). Nor may a
digest of a secret file's content (``local:File``'s ``sha256``): a guessable secret
would be confirmed offline from it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import zlib
from contextlib import closing
from pathlib import Path

import yaml

from cli.conftest import CliProject

TOKEN, NEW_TOKEN = "tok-TOPLEVEL-4711", "tok-ROTATED-0815"
PROGRAM = """\
import json

import stackwright as sw
from stackwright.providers import local, random

config = sw.Config()
token = config.require_secret("token")
password = random.Password("pw", length=24, special=False)

env = local.Command("env", create='test -n "$PW" && test -n "$TOKEN" && echo "got $PW"',
                    environment={"PW": password.result, "TOKEN": token}, triggers=[token])
creds = local.File("creds", path="out/creds.env", mode=0o600,
                   content=sw.Output.all({"db": [{"password": password.result}]}, token).apply(json.dumps))
sw.export("token", token)
sw.export("nested", {"list": [password.result], "dict": {"deep": {"deeper": [token]}}})
"""
FAILING = """
broken = local.Command("broken", create=sw.fmt('echo "cannot use {}" >&2; exit 3', token))
"""


def make(tmp_path: Path) -> CliProject:
    root = tmp_path / "repo" / "proj"
    (root / "stacks").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root.parent)], check=True)
    (root.parent / "stackwright-workspace.yaml").write_text("projects:\n  - path: proj\n    stacks: [dev]\n")
    (root / "stackwright.yaml").write_text(yaml.safe_dump({"name": "proj", "main": "__main__.py"}))
    (root / "__main__.py").write_text(PROGRAM)
    (root / "stacks" / "dev.yaml").write_text("# dev: the secrets test\nconfig:\n  greeting: hi  # kept\n")
    proj = CliProject(root)
    proj.ok("stack", "init", "dev")
    proj.ok("stack", "select", "dev")
    return proj


def database_text(db: Path) -> str:
    """Every value of every table, checkpoint snapshots decompressed."""
    with closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [row for t in tables for row in conn.execute(f"SELECT * FROM {t}")]
    return "\n".join(repr([zlib.decompress(v).decode() if isinstance(v, bytes) else v for v in row])
                     for row in rows)


def test_no_secret_in_plain_text_in_any_artifact(tmp_path: Path) -> None:
    proj = make(tmp_path)
    printed: list[str] = []

    def run(*args: str, code: int = 0) -> str:
        status, out, err = proj.run(*args)
        assert status == code, f"stackwright {' '.join(args)}: {status}\n{out}\n{err}"
        assert "Traceback" not in err, err
        printed.append(f"$ {args[:2]}\n{out}\n{err}")
        return out

    run("config", "set", "--secret", "token", TOKEN)
    assert "# kept" in proj.file("stacks/dev.yaml").read_text()
    assert run("config", "get", "token").strip() == "[secret]"
    for args in (("preview",), ("preview", "--diff"), ("preview", "--format", "json"),
                 ("preview", "--format", "markdown")):
        run(*args)
    run("up", "--yes")
    digests = {hashlib.sha256(proj.file("out/creds.env").read_bytes()).hexdigest()}
    _, revealed, _ = proj.run("outputs", "--show-secrets", "--json")
    outputs = json.loads(revealed)
    password = outputs["nested"]["list"][0]
    assert outputs["token"] == TOKEN and outputs["nested"]["dict"]["deep"]["deeper"] == [TOKEN]
    assert len(password) == 24
    assert json.loads(proj.file("out/creds.env").read_text()) == [{"db": [{"password": password}]}, TOKEN]

    masked = json.loads(run("outputs", "--json"))
    assert masked == {"token": "[secret]", "nested": {"list": ["[secret]"], "dict": {"deep": {"deeper": ["[secret]"]}}}}
    run("outputs")
    run("state", "ls")
    for urn in ("dev::proj::local:Command::env", "dev::proj::local:File::creds", "dev::proj::random:Password::pw"):
        shown = run("state", "show", urn)
        assert "[secret]" in shown
    run("history")
    run("history", "show", "1")
    run("history", "--json")
    run("history", "show", "1", "--json")

    run("config", "set", "--secret", "token", NEW_TOKEN)
    run("preview", "--diff")
    run("preview", "--format", "json")
    run("plan", "--out", "plan.json", "--diff")
    run("approve", "plan.json", "--as", "bob")
    run("apply", "plan.json", "--yes")
    digests.add(hashlib.sha256(proj.file("out/creds.env").read_bytes()).hexdigest())
    run("state", "show", "dev::proj::local:File::creds")
    run("audit")
    run("audit", "--json")
    run("refresh")
    run("refresh", "--yes")

    proj.append_program(FAILING)
    failed = run("up", "--yes", code=1)
    run("history")
    number = int(proj.ok("history").splitlines()[-1].split()[0])
    history = run("history", "show", str(number))
    assert "cannot use [secret]" in history + failed + printed[-3]
    proj.program.write_text(PROGRAM)
    run("up", "--yes")

    run("ci", "github", "--source", "git+https://github.com/acme/stackwright@" + "0" * 40)
    assert (proj.root.parent / ".github" / "workflows").is_dir()
    run("run", "preview", "--all", "--format", "markdown")
    run("secrets", "rotate")
    run("secrets", "rotate", "--to", "passphrase", code=1)  # STACKWRIGHT_PASSPHRASE is not set
    run("outputs")
    run("destroy", "--yes")
    run("history")

    secrets = {TOKEN, NEW_TOKEN, password, *digests}
    found = [(s, block.splitlines()[0]) for block in printed for s in secrets if s in block]
    assert not found, f"printed: {found}"
    repo = proj.root.parent
    for path in sorted(repo.rglob("*")):
        if not path.is_file() or "out" in path.relative_to(repo).parts or ".git" in path.parts:
            continue
        data = database_text(path) if path.suffix == ".db" else path.read_bytes().decode(errors="replace")
        leaked = {s for s in secrets if s in data}
        assert not leaked, f"{path.relative_to(repo)} holds {leaked}"
    assert "$encrypted" in database_text(proj.db)
    assert oct(proj.db.stat().st_mode & 0o777) == oct(0o600)
    assert oct(proj.file("plan.json").stat().st_mode & 0o777) == oct(0o600)
