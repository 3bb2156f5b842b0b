"""A project to look at in the web view, built through the real `stackwright` command:
a component holding resources, a secret that flows into a file and an output, three
stacks (dev applied and refreshed, staging applied, production protected with a saved
plan waiting for approval)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from support import cli_command, cli_env

PROGRAM = '''
import stackwright as sw
from stackwright.providers import local, random


class Site(sw.Component, type="shop:Site"):
    def __init__(self, name, greeting):
        super().__init__(name)
        self.index = local.File("index", path=f"out/{sw.get_stack()}/{name}.html",
                                content=f"<h1>{greeting}</h1>")
        self.about = local.File("about", path=f"out/{sw.get_stack()}/{name}-about.html",
                                content="about us")


config = sw.Config()
password = random.Password("db-password", length=24)
site = Site("storefront", config.get_str("greeting", "hello"))
creds = local.File("db-credentials", path=f"out/{sw.get_stack()}/db.env", mode=0o600,
                   content=sw.fmt("PASSWORD={}\\n", password.result))
sw.export("index", site.index.path)
sw.export("db_password", password.result)
'''

PROJECT = """name: shop
main: __main__.py
environments:
  production:
    protected: true
    required_approvals: 1
    web_approvals: true
    gate: staging
"""


@dataclass
class Shop:
    root: Path
    plan_hash: str

    def secrets(self) -> list[str]:
        """The plain secret values the state holds (read with the stack's key), and the
        digest of the file written from one: it would confirm a guess of the password."""
        out = subprocess.run([*cli_command(), "outputs", "--json", "--show-secrets", "--stack", "dev"],
                             cwd=self.root, env=cli_env(), text=True, capture_output=True, check=True)
        import hashlib
        import json

        creds = (self.root / "out" / "dev" / "db.env").read_bytes()
        return [json.loads(out.stdout)["db_password"], hashlib.sha256(creds).hexdigest()]


def run(root: Path, *args: str, user: str = "alice@example.com") -> str:
    done = subprocess.run([*cli_command(), *args], cwd=root, env=cli_env(user), text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, f"stackwright {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def make_shop(root: Path, web_approvals: bool = True) -> Shop:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stackwright.yaml").write_text(PROJECT if web_approvals else PROJECT.replace("    web_approvals: true\n", ""))
    (root / "__main__.py").write_text(PROGRAM)
    (root / "stacks").mkdir()
    for stack, greeting in (("dev", "hello dev"), ("staging", "hello staging"), ("production", "welcome")):
        (root / "stacks" / f"{stack}.yaml").write_text(f"config:\n  greeting: {greeting}\n")
        run(root, "stack", "init", stack)
    run(root, "up", "--yes", "--stack", "dev")
    (root / "out" / "dev" / "storefront-about.html").write_text("edited by hand")
    run(root, "refresh", "--yes", "--stack", "dev")
    run(root, "up", "--yes", "--stack", "staging")
    out = run(root, "plan", "--out", "prod.plan", "--stack", "production")
    plan_hash = next(line.split()[-1] for line in out.splitlines() if line.startswith("Plan hash:"))
    return Shop(root, plan_hash)
