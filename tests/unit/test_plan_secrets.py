"""The secrets a saved plan carries: sealed at every depth, opened only with the key.

``workflow.secrets`` called in process with the project's real key files; the CLI tests
(tests/workflow/test_plans_approvals.py) check the same through `plan --out` and `apply`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackwright.model.values import UNKNOWN, Secret
from stackwright.operations.keyring import Keyring
from stackwright.program.project import Project
from stackwright.workflow.secrets import ENCRYPTED, SecretsError, decrypt_tree, encrypt_tree, stack_keyring
from unit.workflow_projects import session_of, write_project

TREE: dict[str, Any] = {
    "name": "db",
    "password": Secret("hunter2"),
    "replicas": 3,
    "pending": UNKNOWN,
    "users": [{"name": "app", "token": Secret("tok-app")}, ("ro", Secret({"nested": ["deep-secret", 1]}))],
    "meta": {"level": {"key": Secret(["a", {"b": "list-secret"}]), "plain": None, "flag": True}},
}
PLAIN_TEXTS = ("hunter2", "tok-app", "deep-secret", "list-secret")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return write_project(tmp_path / "proj", {}, stacks=["dev"])


def keyring(project: Project) -> Keyring:
    return Keyring.for_stack(project, "dev")


def secrets_in(value: Any) -> list[Any]:
    """The secrets of a tree, depth first, as plain values."""
    if isinstance(value, Secret):
        return [value.value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in secrets_in(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in secrets_in(v)]
    return []


def test_every_secret_is_sealed_and_nothing_else_is(project: Project) -> None:
    sealed = encrypt_tree(TREE, keyring(project))
    text = json.dumps(sealed)
    assert not any(plain in text for plain in PLAIN_TEXTS)
    assert text.count(ENCRYPTED) == 4
    assert sealed["name"] == "db" and sealed["replicas"] == 3 and sealed["pending"] == {"$unknown": True}
    assert sealed["users"][0]["name"] == "app" and sealed["users"][1][0] == "ro"
    assert sealed["meta"]["level"]["plain"] is None and sealed["meta"]["level"]["flag"] is True
    assert list(sealed["password"]) == [ENCRYPTED] and sealed["password"][ENCRYPTED].startswith("local:")


def test_the_sealed_tree_is_json(project: Project) -> None:
    sealed = encrypt_tree({1: Secret("x"), "t": (1, 2)}, keyring(project))
    assert json.loads(json.dumps(sealed)) == sealed
    assert set(sealed) == {"1", "t"} and sealed["t"] == [1, 2]


def test_a_round_trip_gives_back_every_value(project: Project) -> None:
    sealed = encrypt_tree(TREE, keyring(project))
    opened = decrypt_tree(json.loads(json.dumps(sealed)), keyring(project))
    assert secrets_in(opened) == ["hunter2", "tok-app", {"nested": ["deep-secret", 1]}, ["a", {"b": "list-secret"}]]
    assert opened["pending"] is UNKNOWN
    assert opened["users"][1][0] == "ro" and opened["meta"]["level"]["flag"] is True
    assert isinstance(opened["users"][0]["token"], Secret)


def test_secrets_holding_unknowns_and_secrets_round_trip(project: Project) -> None:
    tree = {"a": Secret({"later": UNKNOWN}), "b": Secret(Secret("inner"))}
    opened = decrypt_tree(encrypt_tree(tree, keyring(project)), keyring(project))
    assert opened["a"].value == {"later": UNKNOWN}
    assert isinstance(opened["b"].value, Secret) and opened["b"].value.value == "inner"


def test_another_projects_key_cannot_open_them(project: Project, tmp_path: Path) -> None:
    sealed = encrypt_tree(TREE, keyring(project))
    other = write_project(tmp_path / "other", {}, stacks=["dev"])
    keyring(other).seal(b"makes the other project's key")
    with pytest.raises(SecretsError, match="cannot decrypt a secret with the local key"):
        decrypt_tree(sealed, keyring(other))


def test_an_altered_ciphertext_is_refused(project: Project) -> None:
    sealed = encrypt_tree({"p": Secret("hunter2")}, keyring(project))
    token = sealed["p"][ENCRYPTED]
    sealed["p"][ENCRYPTED] = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(SecretsError):
        decrypt_tree(sealed, keyring(project))


def test_without_a_key_secrets_stay_masked(project: Project) -> None:
    opened = decrypt_tree(encrypt_tree(TREE, keyring(project)), None)
    assert secrets_in(opened) == [None, None, None, None]
    assert opened["name"] == "db" and opened["pending"] is UNKNOWN


@pytest.mark.parametrize("value", [
    {ENCRYPTED: "local:x", "other": 1}, {"$unknown": False}, {"$unknown": "yes"}, {"$unknown": True, "b": 2}, {},
])
def test_only_an_exact_marker_is_read_as_one(project: Project, value: dict[str, Any]) -> None:
    assert decrypt_tree({"v": [value]}, None) == {"v": [value]}


def test_the_stack_key_is_the_one_its_stack_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKWRIGHT_PASSPHRASE", "correct horse")
    project = write_project(tmp_path / "proj", {}, stacks=["dev", "prod"],
                            stack_files={"prod": {"secrets": "local"}})
    with session_of(project, "dev", "tester") as dev, session_of(project, "prod", "tester") as prod:
        dev_sealed = encrypt_tree(Secret("s"), stack_keyring(dev))
        prod_sealed = encrypt_tree(Secret("s"), stack_keyring(prod))
        assert dev_sealed[ENCRYPTED].startswith("passphrase:")
        assert prod_sealed[ENCRYPTED].startswith("local:")
        assert decrypt_tree(prod_sealed, stack_keyring(dev)).value == "s"
