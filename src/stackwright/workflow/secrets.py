"""Encrypting the secrets a saved plan carries.

A plan file travels: it is reviewed, approved, handed to CI. It must hold every input
apply will use, so that apply needs nothing but the file and the state, yet no secret
may be readable in it. Each ``Secret`` in a value tree, at any depth, becomes
``{"$encrypted": "<scheme>:<ciphertext>"}`` sealed with the stack's key
(``operations.keyring``); everything else stays readable for reviewers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stackwright.model.values import UNKNOWN, Secret, from_json, to_json
from stackwright.operations.keyring import PASSPHRASE_ENV, Keyring, SecretsError
from stackwright.operations.session import StackSession

__all__ = ["ENCRYPTED", "PASSPHRASE_ENV", "SecretsError", "decrypt_tree", "encrypt_tree", "stack_keyring"]

ENCRYPTED = "$encrypted"


def stack_keyring(session: StackSession) -> Keyring:
    """The key that seals this stack's secrets and opens any the project holds."""
    return Keyring.for_stack(session.project, session.stack)


def encrypt_tree(value: Any, keyring: Keyring) -> Any:
    """The JSON form of ``value`` with every ``Secret`` encrypted and ``UNKNOWN`` as
    ``{"$unknown": true}``."""
    if isinstance(value, Secret):
        plain = json.dumps(to_json(value.value), sort_keys=True, separators=(",", ":"))
        return {ENCRYPTED: keyring.seal(plain.encode())}
    if value is UNKNOWN:
        return {"$unknown": True}
    if isinstance(value, Mapping):
        return {str(k): encrypt_tree(v, keyring) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encrypt_tree(v, keyring) for v in value]
    return value


def decrypt_tree(value: Any, keyring: Keyring | None) -> Any:
    """Inverse of ``encrypt_tree``: ``Secret`` and ``UNKNOWN`` markers back.

    With ``keyring=None`` secrets are not decrypted but stand as ``Secret(None)``,
    enough to show a plan (masked) to someone who does not hold the key.
    """
    if isinstance(value, dict):
        if len(value) == 1 and ENCRYPTED in value:
            token = str(value[ENCRYPTED])
            return Secret(None if keyring is None else from_json(json.loads(keyring.open(token))))
        if len(value) == 1 and value.get("$unknown") is True:
            return UNKNOWN
        return {k: decrypt_tree(v, keyring) for k, v in value.items()}
    if isinstance(value, list):
        return [decrypt_tree(v, keyring) for v in value]
    return value
