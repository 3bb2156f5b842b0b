"""A project with plain objects, a Secret and a Helm release, for the gitops tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from helm_servers import EXAMPLE_CHART
from support import cli_command, cli_env

PROGRAM = '''
import stackwright as sw
from stackwright.providers import k8s
from stackwright.providers.k8s import helm

config = sw.Config()
for tenant in config.get_object("tenants", default=[]):
    ns = k8s.Namespace(tenant["name"], metadata={"name": tenant["name"]})
    k8s.Secret(f"{tenant['name']}-db", metadata={"namespace": tenant["name"], "name": "db"},
               string_data={"password": tenant["password"]})
    helm.Chart(f"{tenant['name']}-web", path=config.require_str("chart"), namespace=tenant["name"],
               values_files=config.get_object("values_files", default=[]),
               values=tenant.get("values", {}), opts=sw.ResourceOptions(depends_on=[ns]))
'''

AGE_RECIPIENT_ENV = "GITOPS_TEST_RECIPIENT"


def age_identity(folder: Path) -> tuple[str, Path]:
    """A fresh age identity: its recipient and the key file sops decrypts with."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    key_file = folder / "age.key"
    key_file.write_text(f"{identity}\n")
    return str(identity.to_public()), key_file


class GitopsProject:
    """A project in a git repository (``repo``), in its ``project`` folder."""

    def __init__(self, repo: Path, recipient: str, chart: Path = EXAMPLE_CHART, **settings: Any) -> None:
        self.repo, self.root = repo, repo / "project"
        self.root.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        gitops = {"repo_url": "https://git.example.com/acme/deploy.git", "age_recipients": [recipient], **settings}
        (self.root / "stackwright.yaml").write_text(json.dumps(
            {"name": "shop", "main": "__main__.py", "gitops": gitops}))
        (self.root / "__main__.py").write_text(PROGRAM)
        self.chart = chart

    def stack(self, name: str, tenants: list[dict[str, Any]], **config: Any) -> None:
        (self.root / "stacks").mkdir(exist_ok=True)
        chart = self.chart.relative_to(self.root) if self.chart.is_relative_to(self.root) else self.chart
        config = {"chart": str(chart), "tenants": tenants, **config}
        (self.root / "stacks" / f"{name}.yaml").write_text(json.dumps({"config": config}))
        if not (self.root / ".stackwright" / "state.db").exists() or name not in self.ok("stack", "ls"):
            self.ok("stack", "init", name)

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli_command(), *args], cwd=self.root, env={**cli_env(), **(env or {})},
                              text=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=300)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = self.run(*args, env=env)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (
            f"stackwright {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def commit(self, message: str) -> None:
        subprocess.run(["git", "-C", str(self.repo), "add", "-A", "project"], check=True)
        subprocess.run(["git", "-C", str(self.repo), "-c", "user.email=t@example.com", "-c", "user.name=t",
                        "commit", "-q", "-m", message], check=True)


def sops_decrypt(path: Path, key_file: Path) -> str:
    from stackwright.gitops.sops import find_sops

    done = subprocess.run([find_sops(), "decrypt", "--input-type", "yaml", "--output-type", "yaml", str(path)],
                          env={**os.environ, "SOPS_AGE_KEY_FILE": str(key_file)},
                          capture_output=True, text=True, check=True)
    return done.stdout
