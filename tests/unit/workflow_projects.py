"""In-process projects for the workflow rule tests: no subprocess, no program run.

The approval, gate and plan-file rules read only the project file, the stack files,
allowed_signers and the state store's audit log, so these tests build exactly those and
call the rules directly: fast enough for mutation testing (docs/mutation.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwright.operations.session import StackSession, open_session, open_store
from stackwright.program.project import Project, load_project


def ssh_key(folder: Path, name: str) -> str:
    """A new Ed25519 key in OpenSSH format at ``folder/name``; its public key line."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding, NoEncryption, PrivateFormat, PublicFormat,
    )

    private = Ed25519PrivateKey.generate()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(private.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    path.chmod(0o600)
    return private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def write_project(root: Path, environments: dict[str, Any], *, stacks: Sequence[str] = (),
                  groups: dict[str, list[str]] | None = None,
                  signers: dict[str, Sequence[str]] | None = None,
                  stack_files: dict[str, dict[str, Any]] | None = None) -> Project:
    """Project ``proj`` at ``root`` with these environments and groups, its stacks made.

    ``signers`` maps a key name to the identities allowed_signers lists for it; each key
    is made in ``root.parent / "keys"``.
    """
    root.mkdir(parents=True)
    settings: dict[str, Any] = {"name": "proj", "main": "__main__.py", "environments": environments}
    if groups:
        settings["groups"] = groups
    (root / "stackwright.yaml").write_text(yaml.safe_dump(settings))
    (root / "__main__.py").write_text("import stackwright as sw\n")
    if signers:
        lines = [f'{",".join(names)} namespaces="stackwright-plan" {ssh_key(root.parent / "keys", key)}'
                 for key, names in signers.items()]
        (root / "allowed_signers").write_text("\n".join(lines) + "\n")
    project = load_project(root)
    write_stacks(project, stacks, stack_files)
    return project


def write_stacks(project: Project, stacks: Sequence[str],
                 stack_files: dict[str, dict[str, Any]] | None = None) -> None:
    """Make these stacks in the state and their stack files (``stack_files``' content, or
    an empty config)."""
    store = open_store(project)
    try:
        for stack in stacks:
            store.create_stack(stack)
            path = project.stack_file(stack)
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump((stack_files or {}).get(stack) or {"config": {}}))
    finally:
        store.close()


def made_stacks(project: Project) -> set[str]:
    store = open_store(project)
    try:
        return {info.name for info in store.list_stacks()}
    finally:
        store.close()


@contextmanager
def session_of(project: Project, stack: str, who: str) -> Iterator[StackSession]:
    opened = open_session(project, stack, who)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def no_signing_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key configured anywhere (neither STACKWRIGHT_SIGNING_KEY nor git's
    user.signingkey); the git config file it returns may set one."""
    monkeypatch.delenv("STACKWRIGHT_SIGNING_KEY", raising=False)
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return config
