"""The ``random`` provider: values generated once and then kept in state.

Nothing lives outside the state file, so ``read`` returns what was recorded and any
input change (including ``keepers``, which exist only to force a new value) makes a
new value. Randomness comes from ``secrets``, never from ``random``. An ``Id`` is its own
hex value, so ``import`` can adopt one by it; a password's id names no value, so a
``Password`` cannot be imported.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Mapping
from typing import Any

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.protocol import Created, OperationContext, ReadResult, ResourceProvider
from stackwright.providers.registry import SimpleProvider

__all__ = ["Id", "IdProvider", "Password", "PasswordProvider", "provider"]

VERSION = "0.1.0"
MIN_PASSWORD_LENGTH = 4
SPECIAL_CHARACTERS = "!@#$%&*()-_=+[]{}<>:?"
"""Characters that survive shells, URLs in most positions, and config files."""

CHARACTER_CLASSES: dict[str, str] = {
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "numeric": string.digits,
    "special": SPECIAL_CHARACTERS,
}


class Id(Resource, type="random:Id"):
    """Random bytes for unique names (bucket suffixes and the like)."""

    byte_length: int = 8
    prefix: str = ""
    keepers: dict[str, str] = {}
    hex: Output[str]
    b64: Output[str]


class Password(Resource, type="random:Password"):
    """A generated password; its ``result`` is secret everywhere it goes."""

    length: int = 16
    special: bool = True
    upper: bool = True
    lower: bool = True
    numeric: bool = True
    keepers: dict[str, str] = {}
    result: Output[str]


class _Recorded(ResourceProvider):
    """Generated values have no live object: what state holds is the truth."""

    replace_on = frozenset({"*"})
    in_process = True

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        if id is None:
            return None
        return ReadResult(id=id, inputs=dict(inputs), outputs=dict(outputs))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        """Unreachable while every input replaces; keeps the value if ever called."""
        return dict(old_outputs)

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        """Forgetting the state entry is the whole deletion."""


class IdProvider(_Recorded):
    type_token = "random:Id"
    resource_class = Id

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        checked = dict(inputs)
        length = checked.setdefault("byte_length", 8)
        if not _is_int(length) or length < 1:
            raise InputError(f"byte_length must be a positive integer, got {length!r}", prop="byte_length")
        if not isinstance(checked.setdefault("prefix", ""), str):
            raise InputError("prefix must be a string", prop="prefix")
        _check_keepers(checked)
        return checked

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        data = secrets.token_bytes(int(inputs.get("byte_length", 8)))
        outputs = _id_outputs(str(inputs.get("prefix", "")), data)
        return Created(id=outputs["hex"], outputs=outputs)

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        """With nothing recorded (``import``) the id is read as the value: a prefix
        cannot be told apart from hex digits, so it is taken as bytes, with none."""
        if id is None or inputs:
            return super().read(ctx, id, inputs, outputs)
        data = _hex_bytes(id)
        return ReadResult(id=id, inputs={"byte_length": len(data), "prefix": "", "keepers": {}},
                          outputs=_id_outputs("", data))


def _id_outputs(prefix: str, data: bytes) -> dict[str, str]:
    return {"hex": prefix + data.hex(),
            "b64": prefix + base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")}


def _hex_bytes(id: str) -> bytes:
    """The bytes an Id's hex value spells; anything else is no Id this provider made."""
    try:
        data = bytes.fromhex(id)
    except ValueError:
        data = b""
    if not data or data.hex() != id:
        raise ProviderError(f"a random:Id is imported by its hex value, and {id!r} is not one",
                            hint="give the value as lower-case hex digits, two per byte, e.g. 1a2b3c4d")
    return data


class PasswordProvider(_Recorded):
    type_token = "random:Password"
    resource_class = Password
    secret_outputs = frozenset({"result"})
    not_importable = "a generated password lives only in the state, and its id names no password to read back"

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        checked = dict(inputs)
        length = checked.setdefault("length", 16)
        if not _is_int(length) or length < MIN_PASSWORD_LENGTH:
            raise InputError(f"length must be an integer of at least {MIN_PASSWORD_LENGTH}, got {length!r}",
                             prop="length")
        for name in CHARACTER_CLASSES:
            if not isinstance(checked.setdefault(name, True), bool):
                raise InputError(f"{name} must be True or False", prop=name)
        if not _enabled_classes(checked):
            raise InputError("every character class is disabled", prop="lower",
                             hint="enable at least one of lower, upper, numeric, special")
        _check_keepers(checked)
        return checked

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        """The id is the operation token: the password itself must never be an id."""
        password = generate_password(int(inputs.get("length", 16)), _enabled_classes(inputs))
        return Created(id=ctx.token, outputs={"result": password})


def generate_password(length: int, classes: list[str]) -> str:
    """At least one character of each class, the rest from all of them, shuffled."""
    alphabet = "".join(classes)
    chars = [secrets.choice(c) for c in classes]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def _enabled_classes(inputs: Mapping[str, Any]) -> list[str]:
    return [chars for name, chars in CHARACTER_CLASSES.items() if inputs.get(name, True)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_keepers(checked: dict[str, Any]) -> None:
    keepers = checked.setdefault("keepers", {})
    if not isinstance(keepers, Mapping) or not all(isinstance(k, str) for k in keepers):
        raise InputError("keepers must be a mapping with string keys", prop="keepers")


def provider() -> SimpleProvider:
    return SimpleProvider("random", VERSION, [IdProvider(), PasswordProvider()])
