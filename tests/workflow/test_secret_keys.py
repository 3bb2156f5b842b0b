"""The keys that encrypt secrets at rest: passphrase, local key file, age, AWS KMS;
rotation; and refusals that change nothing (wrong passphrase, missing key, altered
ciphertext)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from cli.conftest import CliProject

PROGRAM = """\
import stackwright as sw
from stackwright.providers import local

config = sw.Config()
local.File("creds", path="out/creds.env", content=sw.fmt("T={}", config.require_secret("token")), mode=0o600)
sw.export("token", config.require_secret("token"))
sw.export("nested", {"a": [{"b": config.require_secret("token")}]})
"""
TOKEN = "tok-KEYS-314159"


def make(tmp_path: Path, secrets: object = None, **env: str) -> CliProject:
    root = tmp_path / "proj"
    (root / "stacks").mkdir(parents=True)
    (root / "stackwright.yaml").write_text(yaml.safe_dump({"name": "proj", "main": "__main__.py"}))
    (root / "__main__.py").write_text(PROGRAM)
    stack: dict[str, object] = {"config": {"greeting": "hi"}}
    if secrets is not None:
        stack["secrets"] = secrets
    (root / "stacks" / "dev.yaml").write_text(yaml.safe_dump(stack))
    proj = CliProject(root)
    proj.ok("stack", "init", "dev")
    proj.ok("stack", "select", "dev")
    proj.ok("config", "set", "--secret", "token", TOKEN, **env)
    proj.ok("up", "--yes", **env)
    return proj


def fingerprint(proj: CliProject) -> tuple[dict[str, str], object]:
    """Every file that could change (stack files, keys), hashed, caches aside; and
    every row of the state but the audit log's failed attempts (a refused `secrets
    rotate` is audited as one)."""
    files = {path: digest for path, digest in proj.tree().items() if not path.startswith(".stackwright/state.db")}
    return files, proj.state_rows()


def refused(proj: CliProject, *args: str, **env: str) -> str:
    """A clean error (error line and hint) and nothing changed."""
    before = fingerprint(proj)
    err = proj.fails(*args, **env)
    assert len(err.strip().splitlines()) <= 2, err
    assert fingerprint(proj) == before
    return err


def shown_token(proj: CliProject, **env: str) -> str:
    value: str = json.loads(proj.ok("outputs", "--show-secrets", "--json", **env))["token"]
    return value


def test_passphrase_stack(tmp_path: Path) -> None:
    proj = make(tmp_path, "passphrase", STACKWRIGHT_PASSPHRASE="right")
    assert shown_token(proj, STACKWRIGHT_PASSPHRASE="right") == TOKEN
    assert "secure: passphrase:" in proj.file("stacks/dev.yaml").read_text()
    assert not proj.file(".stackwright/secrets.key").exists()
    for command in (("preview",), ("up", "--yes"), ("outputs", "--show-secrets"), ("secrets", "rotate"),
                    ("config", "get", "token", "--show-secrets")):
        err = refused(proj, *command, STACKWRIGHT_PASSPHRASE="wrong")
        assert "cannot decrypt a secret with the passphrase key" in err or "NEW_PASSPHRASE" in err
        err = refused(proj, *command, STACKWRIGHT_PASSPHRASE="")
        assert "STACKWRIGHT_PASSPHRASE is not set" in err or "NEW_PASSPHRASE" in err

    proj.ok("secrets", "rotate", STACKWRIGHT_PASSPHRASE="right", STACKWRIGHT_NEW_PASSPHRASE="newer")
    assert shown_token(proj, STACKWRIGHT_PASSPHRASE="newer") == TOKEN
    refused(proj, "preview", STACKWRIGHT_PASSPHRASE="right")
    assert "No changes." in proj.ok("preview", STACKWRIGHT_PASSPHRASE="newer")


def test_missing_local_key_and_altered_ciphertext_change_nothing(tmp_path: Path) -> None:
    proj = make(tmp_path)
    key = proj.file(".stackwright/secrets.key")
    saved = key.read_bytes()
    key.unlink()
    err = refused(proj, "preview")
    assert "the local key" in err and "is missing" in err
    assert not key.exists(), "reading never makes a key"
    key.write_bytes(saved)

    stack_file = proj.file("stacks/dev.yaml")
    original = stack_file.read_text()
    token = original.split("secure: ")[1].split("}")[0]
    stack_file.write_text(original.replace(token, token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]))
    for command in (("preview",), ("up", "--yes"), ("secrets", "rotate")):
        assert "cannot decrypt a secret with the local key" in refused(proj, *command)
    stack_file.write_text(original)

    with closing(sqlite3.connect(proj.db)) as db, db:
        [(outputs,)] = db.execute("SELECT outputs FROM outputs WHERE stack = 'dev'")
        sealed = json.loads(outputs)["token"]["$encrypted"]
        db.execute("UPDATE outputs SET outputs = ? WHERE stack = 'dev'",
                   (outputs.replace(sealed, sealed[:-8] + "AAAA" + sealed[-4:]),))
    for command in (("preview",), ("outputs", "--show-secrets"), ("secrets", "rotate")):
        assert "cannot decrypt a secret" in refused(proj, *command)


def test_an_altered_secret_config_value_is_named_by_file_line_and_key(tmp_path: Path) -> None:
    proj = make(tmp_path)
    stack_file = proj.file("stacks/dev.yaml")
    original = stack_file.read_text()
    assert original.splitlines()[2].startswith("  token: {secure: local:")
    token = original.split("secure: ")[1].split("}")[0]
    for altered in ("garbage", "local:garbage", "nokind:abc"):
        stack_file.write_text(original.replace(token, altered))
        for command in (("preview",), ("config", "get", "token", "--show-secrets"), ("secrets", "rotate")):
            err = refused(proj, *command)
            assert err.startswith("error: stacks/dev.yaml:3: config key 'token': "), err

    stack_file.write_text(original + "  db:\n    users:\n      - name: a\n        password: {secure: garbage}\n")
    err = refused(proj, "preview")
    assert err.startswith("error: stacks/dev.yaml:7: config key 'db.users.0.password': a ciphertext names no key")


def test_rotating_the_local_key(tmp_path: Path) -> None:
    proj = make(tmp_path)
    key = proj.file(".stackwright/secrets.key")
    before = key.read_bytes()
    out = proj.ok("secrets", "rotate")
    assert "Re-encrypted stack dev's state and 1 secret config value(s) with local." in out
    assert key.read_bytes() != before and len(key.read_bytes().split()) == 1
    assert shown_token(proj) == TOKEN
    history = proj.ok("history", "show", "1")
    assert "creds" in history
    assert "No changes." in proj.ok("preview")

    from cryptography.fernet import Fernet, InvalidToken

    token = proj.file("stacks/dev.yaml").read_text().split("secure: local:")[1].split("}")[0]
    with pytest.raises(InvalidToken):
        Fernet(before.strip()).decrypt(token.encode())


def age_identity(folder: Path, name: str) -> tuple[str, str]:
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    path = folder / f"{name}.age"
    path.write_text(f"# {name}\n{identity}\n")
    return str(path), str(identity.to_public())


def test_age_recipients_each_decrypt_with_their_own_key(tmp_path: Path) -> None:
    alice, alice_public = age_identity(tmp_path, "alice")
    bob, bob_public = age_identity(tmp_path, "bob")
    carol, _ = age_identity(tmp_path, "carol")
    proj = make(tmp_path, {"age": [alice_public, bob_public]}, STACKWRIGHT_AGE_IDENTITY=alice)
    assert shown_token(proj, STACKWRIGHT_AGE_IDENTITY=bob) == TOKEN
    assert "secure: age:" in proj.file("stacks/dev.yaml").read_text()
    err = refused(proj, "preview", STACKWRIGHT_AGE_IDENTITY=carol)
    assert "you are not one of its recipients" in err
    err = refused(proj, "preview", STACKWRIGHT_AGE_IDENTITY="")
    assert "STACKWRIGHT_AGE_IDENTITY is not set" in err

    proj.ok("secrets", "rotate", "--to", f"age:{alice_public}", STACKWRIGHT_AGE_IDENTITY=bob)
    assert yaml.safe_load(proj.file("stacks/dev.yaml").read_text())["secrets"] == {"age": [alice_public]}
    assert shown_token(proj, STACKWRIGHT_AGE_IDENTITY=alice) == TOKEN
    refused(proj, "outputs", "--show-secrets", STACKWRIGHT_AGE_IDENTITY=bob)


def test_aws_kms_key_in_the_local_emulator(tmp_path: Path, aws_endpoint: str) -> None:
    import boto3

    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=aws_endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    key_id = kms.create_key(Description="stackwright test")["KeyMetadata"]["KeyId"]
    alias = f"alias/stackwright-{tmp_path.name[-12:].replace('_', '-')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    url = f"awskms://{alias}?region=us-east-1&endpoint={aws_endpoint}"
    proj = make(tmp_path, url, **env)
    assert "secure: awskms:" in proj.file("stacks/dev.yaml").read_text()
    with closing(sqlite3.connect(proj.db)) as db:
        assert '"$encrypted":"awskms:' in db.execute("SELECT outputs FROM outputs").fetchone()[0]
    assert shown_token(proj, **env) == TOKEN
    proj.ok("secrets", "rotate", "--to", "local", **env)
    assert shown_token(proj) == TOKEN
    proj.ok("secrets", "rotate", "--to", url, **env)
    assert shown_token(proj, **env) == TOKEN
    stack_file = proj.file("stacks/dev.yaml")
    text = stack_file.read_text()
    blob = text.split("secure: awskms:")[1].split("}")[0]
    stack_file.write_text(text.replace(blob, blob[:20] + ("A" if blob[20] != "A" else "B") + blob[21:]))
    err = refused(proj, "preview", **env)
    assert "KMS decrypt refused" in err


# --- rotating a key that several stacks use ------------------------------------------------

OTHER = "tok-PRODUCTION-2718"


def two_stacks(tmp_path: Path, secrets: object = None, **env: str) -> CliProject:
    """dev (from ``make``) and production, each with a secret token, applied; and a
    stack file with a secret whose stack was never made (staging)."""
    proj = make(tmp_path, secrets, **env)
    if secrets is not None:
        proj.file("stacks/production.yaml").write_text(yaml.safe_dump({"config": {}, "secrets": secrets}))
        proj.file("stacks/staging.yaml").write_text(yaml.safe_dump({"config": {}, "secrets": secrets}))
    proj.ok("stack", "init", "production")
    proj.ok("config", "set", "--secret", "token", OTHER, **env)
    proj.ok("up", "--yes", **env)
    proj.ok("config", "set", "--secret", "--stack", "staging", "token", "tok-STAGING", **env)
    return proj


def readable(proj: CliProject, **env: str) -> None:
    """Every stack's secrets open, in its config and its state (so `up` works), and
    nothing changed."""
    for stack, token in (("dev", TOKEN), ("production", OTHER)):
        assert proj.ok("config", "get", "token", "--show-secrets", "--stack", stack, **env) == token + "\n"
        shown = json.loads(proj.ok("outputs", "--show-secrets", "--json", "--stack", stack, **env))
        assert shown["token"] == token
        assert "No changes." in proj.ok("preview", "--stack", stack, **env)
    assert proj.ok("config", "get", "token", "--show-secrets", "--stack", "staging", **env) == "tok-STAGING\n"


def rotations(proj: CliProject, stack: str) -> list[dict[str, object]]:
    events = json.loads(proj.ok("audit", "--json", "--stack", stack))
    return [e for e in events if e["kind"] == "rotate"]


def test_rotating_the_local_key_re_encrypts_every_stack_that_uses_it(tmp_path: Path) -> None:
    """The local key is the project's: rotating it on production re-encrypts dev too
    (config and state) and the stack file of a stack never made, then drops the old key."""
    proj = two_stacks(tmp_path)
    key = proj.file(".stackwright/secrets.key")
    before = key.read_bytes()
    out = proj.ok("secrets", "rotate")
    assert "production" in out and "dev" in out and "staging" in out, out
    assert key.read_bytes() != before and len(key.read_bytes().split()) == 1
    readable(proj)

    from stackwright.operations.keyring import FernetKey, SecretsError

    old = FernetKey("local", lambda sealing: [before.strip()], "the old key")
    tokens = [proj.file(f"stacks/{stack}.yaml").read_text().split("secure: local:")[1].split("}")[0]
              for stack in ("dev", "production", "staging")]
    with closing(sqlite3.connect(proj.db)) as db:
        tokens += [json.loads(text)["token"]["$encrypted"].removeprefix("local:")
                   for (text,) in db.execute("SELECT outputs FROM outputs")]
    assert len(tokens) == 5
    for token in tokens:
        with pytest.raises(SecretsError):
            old.open(token)
    [event] = rotations(proj, "dev")
    assert event["who"] == "tester"
    assert event["data"]["stack"] == "production" and event["data"]["stacks"] == ["production", "dev", "staging"]
    assert [e["data"]["stack"] for e in rotations(proj, "production")] == ["production"]


def test_a_rotation_that_cannot_re_encrypt_every_stack_changes_nothing(tmp_path: Path) -> None:
    """Another stack that uses the key is locked, or holds a value that does not open:
    the rotation is refused before anything is written, and says which stack."""
    import os
    import socket
    import time

    from stackwright.state.records import LockInfo

    proj = two_stacks(tmp_path)
    store = proj.store("dev")
    try:
        store.acquire_lock("dev", LockInfo(owner="someone", pid=os.getppid(), host=socket.gethostname(),
                                           acquired_at=time.time(), operation="up", token="other"))
        err = refused(proj, "secrets", "rotate")
        assert "stack 'dev' is locked by someone" in err, err
        assert "rotating the project's local key re-encrypts every stack that uses it" in err, err
    finally:
        store.release_lock("dev", "other")
        store.close()

    dev_file = proj.file("stacks/dev.yaml")
    original = dev_file.read_text()
    sealed = original.split("secure: ")[1].split("}")[0]
    dev_file.write_text(original.replace(sealed, sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]))
    err = refused(proj, "secrets", "rotate")
    assert err.startswith("error: stacks/dev.yaml:3: config key 'token': cannot decrypt"), err
    attempts = [e for e in json.loads(proj.ok("audit", "--json", "--stack", "production"))
                if e["kind"] == "attempt"]
    assert [(a["data"]["command"], a["data"]["stage"]) for a in attempts] == [
        ("secrets rotate", "lock"), ("secrets rotate", "state edit")]
    dev_file.write_text(original)
    readable(proj)


def test_rotating_the_passphrase_moves_every_stack_that_uses_it(tmp_path: Path) -> None:
    """One passphrase opens every passphrase stack of the project: rotating it on one
    moves all of them, so that STACKWRIGHT_PASSPHRASE opens the whole project again."""
    proj = two_stacks(tmp_path, "passphrase", STACKWRIGHT_PASSPHRASE="right")
    proj.ok("secrets", "rotate", STACKWRIGHT_PASSPHRASE="right", STACKWRIGHT_NEW_PASSPHRASE="newer")
    readable(proj, STACKWRIGHT_PASSPHRASE="newer")
    refused(proj, "outputs", "--show-secrets", "--stack", "dev", STACKWRIGHT_PASSPHRASE="right")


def test_an_age_rotation_touches_only_its_stack(tmp_path: Path) -> None:
    """age recipients are named by each stack file (as a KMS key is): rotating one stack's
    changes no other stack, and the local key other stacks use stays."""
    alice, alice_public = age_identity(tmp_path, "alice")
    proj = two_stacks(tmp_path)
    key = proj.file(".stackwright/secrets.key").read_bytes()
    dev = proj.file("stacks/dev.yaml").read_text()
    proj.ok("secrets", "rotate", "--to", f"age:{alice_public}")
    assert proj.file("stacks/dev.yaml").read_text() == dev
    assert proj.file(".stackwright/secrets.key").read_bytes() == key
    proj.ok("secrets", "rotate", STACKWRIGHT_AGE_IDENTITY=alice)
    assert proj.file("stacks/dev.yaml").read_text() == dev
    readable(proj, STACKWRIGHT_AGE_IDENTITY=alice)
    assert [e["data"]["stacks"] for e in rotations(proj, "production")] == [["production"], ["production"]]
    assert rotations(proj, "dev") == []


def test_a_protected_environment_allows_rotation_and_audits_it(tmp_path: Path) -> None:
    """Rotation changes no resource and no value, only how secrets are sealed: a
    protected environment allows it, and its audit log records who rotated what."""
    proj = two_stacks(tmp_path)
    settings = yaml.safe_load(proj.file("stackwright.yaml").read_text())
    settings["environments"] = {"production": {"protected": True, "required_approvals": 1}}
    proj.file("stackwright.yaml").write_text(yaml.safe_dump(settings))
    refused_up = proj.fails("up", "--yes", "--stack", "production")
    assert "is protected" in refused_up
    proj.ok("secrets", "rotate", "--stack", "dev", "--as", "alice@example.com")
    [event] = rotations(proj, "production")
    assert event["who"] == "alice@example.com" and event["data"]["stack"] == "dev"
    assert "production" in event["data"]["stacks"]
    audit = proj.ok("audit", "--stack", "production")
    assert "rotate" in audit and "alice@example.com" in audit
