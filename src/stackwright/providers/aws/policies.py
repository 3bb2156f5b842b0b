"""The AWS provider's policy rules: ``no-public-bucket`` and ``no-admin-policy``.

Each judges the new inputs of resources of its types (``InputRule``); the workflow
runs them with the environment's enforcement like any built-in rule. Unknown or secret
parts of an input cannot be judged at plan time and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from stackwright.providers.protocol import InputRule

__all__ = ["RULES"]

BUCKET = "aws:s3:Bucket"
POLICY_DOCUMENTS: Mapping[str, tuple[str, ...]] = {
    "aws:iam:Policy": ("policy",),
    "aws:iam:RolePolicy": ("policy",),
    "aws:iam:Role": ("assume_role_policy",),
}
"""The inputs of each type that hold IAM policy documents."""

ADMIN_ACTIONS = frozenset({"*", "*:*"})


def no_public_bucket(type_token: str, inputs: Mapping[str, Any]) -> Iterator[str]:
    """A public bucket is the classic data leak: block public access, and grant
    ``Principal: "*"`` only under a condition (source VPC, organisation...)."""
    if inputs.get("block_public_access") is False:
        yield "does not block public access (block_public_access=False)"
    for name, statement in _statements(inputs.get("policy")):
        if _allows(statement) and _anyone(statement.get("Principal")) and not statement.get("Condition"):
            yield f"bucket policy {name} allows Principal \"*\" without a Condition"


def no_admin_policy(type_token: str, inputs: Mapping[str, Any]) -> Iterator[str]:
    """``Allow * on *`` is full administrator access: grant what the workload needs."""
    for key in POLICY_DOCUMENTS[type_token]:
        for name, statement in _statements(inputs.get(key)):
            if _is_admin(statement):
                yield f"{key} {name} allows every action (\"Action\": \"*\") on every resource"


def _strings(value: Any) -> list[str]:
    """An IAM field that may be one string or a list of them, as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def _statements(document: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """A policy document's statements, each with a name for messages (Sid or position)."""
    if not isinstance(document, Mapping):
        return []
    raw = document.get("Statement")
    listed = [raw] if isinstance(raw, Mapping) else raw if isinstance(raw, list) else []
    return [(_statement_name(s, i), s) for i, s in enumerate(listed) if isinstance(s, Mapping)]


def _statement_name(statement: Mapping[str, Any], index: int) -> str:
    sid = statement.get("Sid")
    return f"statement {sid!r}" if isinstance(sid, str) and sid else f"statement {index + 1}"


def _allows(statement: Mapping[str, Any]) -> bool:
    effect = statement.get("Effect")
    return isinstance(effect, str) and effect.lower() == "allow"


def _anyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in _strings(v) for v in principal.values())
    return False


def _is_admin(statement: Mapping[str, Any]) -> bool:
    actions = set(_strings(statement.get("Action")))
    return _allows(statement) and bool(actions & ADMIN_ACTIONS) and "*" in _strings(statement.get("Resource"))


RULES: tuple[InputRule, ...] = (
    InputRule("no-public-bucket", frozenset({BUCKET}), no_public_bucket,
              "S3 buckets block public access; policies grant Principal \"*\" only with a Condition"),
    InputRule("no-admin-policy", frozenset(POLICY_DOCUMENTS), no_admin_policy,
              "no IAM document allows Action \"*\" on Resource \"*\""),
)
