"""Encrypting the secrets a saved plan carries.

A plan file travels: it is reviewed, approved, handed to CI. It must hold every input
apply will use, so that apply needs nothing but the file and the state, yet no secret
may be readable in it. Each ``Secret`` in a value tree becomes
``{"$encrypted": "<Fernet token>"}``; everything else stays readable for reviewers.

The key is derived from ``STACKWRIGHT_PASSPHRASE`` when it is set (so that a CI runner
and a laptop can share plans), else it is a random key kept in
``<project>/.stackwright/secrets.key`` (mode 0600), made on first use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from stackwright.errors import StackwrightError
from stackwright.model.values import UNKNOWN, Secret, from_json, to_json
from stackwright.program.project import Project

ENCRYPTED = "$encrypted"
PASSPHRASE_ENV = "STACKWRIGHT_PASSPHRASE"
KEY_FILE = "secrets.key"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
"""Costly enough to slow guessing a passphrase, cheap enough for every CLI run (~0.1s)."""


class SecretsError(StackwrightError):
    """The plan's secrets cannot be decrypted or the key cannot be read."""


def project_key(project: Project) -> bytes:
    """The Fernet key for this project's plan files (see the module docstring)."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if passphrase:
        return passphrase_key(passphrase, project.name)
    return _key_file(project.state_dir / KEY_FILE)


def passphrase_key(passphrase: str, project_name: str) -> bytes:
    """A key every machine derives alike from the same passphrase: the salt is the
    project's name, so one passphrase gives different keys in different projects."""
    salt = hashlib.sha256(b"stackwright-plan-secrets:" + project_name.encode()).digest()
    raw = hashlib.scrypt(passphrase.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                         maxmem=64 * 1024 * 1024, dklen=32)
    return base64.urlsafe_b64encode(raw)


def _key_file(path: Path) -> bytes:
    """Read the key, or create it: written to a private temporary file first and
    linked into place, so a concurrent run never reads half a key and never replaces
    one that another run already used."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            os.fchmod(handle, 0o600)
            os.write(handle, Fernet.generate_key())
            os.fsync(handle)
            os.close(handle)
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError:
        raise SecretsError(f"{path} does not hold a valid key",
                           hint=f"restore it, or remove it and make the plan again; or set {PASSPHRASE_ENV}") from None
    return key


def encrypt_tree(value: Any, key: bytes) -> Any:
    """The JSON form of ``value`` with every ``Secret`` encrypted and ``UNKNOWN`` as
    ``{"$unknown": true}``."""
    return _encrypt(value, Fernet(key))


def _encrypt(value: Any, fernet: Fernet) -> Any:
    if isinstance(value, Secret):
        plain = json.dumps(to_json(value.value), sort_keys=True, separators=(",", ":"))
        return {ENCRYPTED: fernet.encrypt(plain.encode()).decode("ascii")}
    if value is UNKNOWN:
        return {"$unknown": True}
    if isinstance(value, Mapping):
        return {str(k): _encrypt(v, fernet) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encrypt(v, fernet) for v in value]
    return value


def decrypt_tree(value: Any, key: bytes | None) -> Any:
    """Inverse of ``encrypt_tree``: ``Secret`` and ``UNKNOWN`` markers back.

    With ``key=None`` secrets are not decrypted but stand as ``Secret(None)``, enough
    to show a plan (masked) to someone who does not hold the key.
    """
    return _decrypt(value, Fernet(key) if key is not None else None)


def _decrypt(value: Any, fernet: Fernet | None) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and ENCRYPTED in value:
            return Secret(_open(value[ENCRYPTED], fernet))
        if len(value) == 1 and value.get("$unknown") is True:
            return UNKNOWN
        return {k: _decrypt(v, fernet) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypt(v, fernet) for v in value]
    return value


def _open(token: Any, fernet: Fernet | None) -> Any:
    if fernet is None:
        return None
    try:
        plain = fernet.decrypt(str(token).encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise SecretsError(
            "cannot decrypt the plan's secrets: this key is not the one the plan was made with",
            hint=f"set {PASSPHRASE_ENV} to the passphrase used when planning, or apply where "
            f"the plan was made (the key is .stackwright/{KEY_FILE})",
        ) from None
    return from_json(json.loads(plain))
