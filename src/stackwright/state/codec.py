"""Pure encoding helpers shared by the state backends (SQLite, PostgreSQL).

Every backend stores values in the same text form (``marker_json``/``from_json``
markers for secrets and unknowns) and checkpoint snapshots in the same compressed
JSON, so a row means the same thing whichever database holds it.
"""

from __future__ import annotations

import gc
import json
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from stackwright.errors import LockHeldError, StateError
from stackwright.model.values import from_json, marker_json
from stackwright.state.records import (
    Change, Checkpoint, CheckpointDetail, LockInfo, PendingOperation, ResourceState,
)

SNAPSHOT_FORMAT: Final = 1

_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""The C string quoter behind ``json.dumps``, without its per-call overhead."""
_BOOL: Final = {False: "false", True: "true"}


class Corrupt(StateError):
    """A stored row could not be decoded; turned into StateError with the file path."""


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=marker_json)


def dumps(value: Any) -> str:
    """Compact stored form; secrets become ``{"$secret": ...}`` markers. The markers
    are written by the encoder's ``default`` hook, so plain values never leave C."""
    return _ENCODER.encode(value)


def loads(text: str) -> Any:
    """Inverse of ``dumps``; skips the marker walk when the text cannot hold one."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise Corrupt("a stored JSON value does not decode") from None
    return from_json(value) if '"$' in text else value


@contextmanager
def gc_paused() -> Iterator[None]:
    """Decoding builds ~10^5 acyclic containers; the cycle collector firing over and
    over while they are made more than doubled snapshot() time of 10k resources."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def no_stack(stack: str) -> StateError:
    return StateError(f"no stack named {stack!r}", hint="stackwright stack ls / stack init NAME")


def ago(seconds: float) -> str:
    """Coarse human duration, enough to judge whether a lock holder is still alive."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def lock_held(stack: str, lock: LockInfo) -> LockHeldError:
    return LockHeldError(
        f"stack {stack!r} is locked by {lock.owner} (pid {lock.pid} on {lock.host}), "
        f"running {lock.operation!r}, taken {ago(time.time() - lock.acquired_at)} ago",
        hint="wait for it to finish; if it crashed, run `stackwright unlock` "
        "after confirming the holder is gone",
    )


def resource_params(stack: str, r: ResourceState) -> tuple[Any, ...]:
    return (
        stack, r.urn, r.type, r.id, dumps(r.inputs), dumps(r.outputs), r.parent,
        dumps(r.deps), int(r.protect), int(r.retain_on_delete), int(r.external), dumps(r.options),
    )


def resource_rows(rows: list[Any]) -> dict[str, ResourceState]:
    """Decode all rows with one ``json.loads``: per-call overhead dominated snapshot()."""
    text = "[" + ",".join([f"[{r[3]},{r[4]},{r[6]},{r[10]}]" for r in rows]) + "]"
    try:
        values = json.loads(text)
    except (TypeError, ValueError):
        raise Corrupt("a stored resource does not decode") from None
    if len(values) != len(rows):
        raise Corrupt("a stored resource does not decode")
    return {row[0]: resource_row(row, value) for row, value in zip(rows, values)}


def resource_row(row: Sequence[Any], value: Any) -> ResourceState:
    urn, type_, id_, inputs_text, outputs_text, parent, _, protect, retain, external, _ = row
    try:
        inputs, outputs, deps, options = value
    except (TypeError, ValueError):
        raise Corrupt(f"resource {urn} does not decode") from None
    if not (isinstance(inputs, dict) and isinstance(outputs, dict) and isinstance(deps, list)
            and isinstance(options, dict)):
        raise Corrupt(f"resource {urn} does not decode")
    if '"$' in inputs_text:
        inputs = from_json(inputs)
    if '"$' in outputs_text:
        outputs = from_json(outputs)
    return ResourceState(
        urn, type_, id_, inputs, outputs, parent, deps,
        bool(protect), bool(retain), bool(external), options,
    )


def pending_row(row: Sequence[Any]) -> PendingOperation:
    token, urn, type_, op, inputs, resource_id, parent, deps, started_at = row
    return PendingOperation(
        token, urn, type_, op, loads(inputs), resource_id, parent, loads(deps), started_at
    )


def checkpoint_row(row: Sequence[Any]) -> Checkpoint:
    number, kind, who, started, finished, result, counts, message, serial = row
    return Checkpoint(number, kind, who, started, finished, result, loads(counts), message, serial)


def change_json(change: Change) -> dict[str, Any]:
    return {
        "urn": change.urn, "type": change.type, "op": change.op,
        "diffs": change.diffs, "error": change.error,
    }


def change_from(data: dict[str, Any]) -> Change:
    return Change(data["urn"], data["type"], data["op"], data["diffs"], data["error"])


def resource_from(data: dict[str, Any]) -> ResourceState:
    return ResourceState(
        data["urn"], data["type"], data["id"], data["inputs"], data["outputs"],
        data["parent"], data["deps"], data["protect"], data["retain_on_delete"],
        data["external"], data.get("options", {}),
    )


def snapshot_json(rows: list[Any], outputs_text: str) -> str:
    """Checkpoint snapshot spliced from the stored JSON fragments, without re-decoding."""
    q = _quote
    items = ",".join([
        f'{{"urn":{q(urn)},"type":{q(type_)},"id":{q(id_)},"inputs":{inputs},'
        f'"outputs":{outputs},"parent":{"null" if parent is None else q(parent)},'
        f'"deps":{deps},"protect":{_BOOL[bool(p)]},"retain_on_delete":{_BOOL[bool(r)]},'
        f'"external":{_BOOL[bool(e)]},"options":{options}}}'
        for urn, type_, id_, inputs, outputs, parent, deps, p, r, e, options in rows
    ])
    return f'{{"format":{SNAPSHOT_FORMAT},"resources":[{items}],"outputs":{outputs_text}}}'


def checkpoint_detail(row: Sequence[Any]) -> CheckpointDetail:
    """Decode ``checkpoint columns..., changes, snapshot`` (the snapshot compressed)."""
    try:
        text = zlib.decompress(bytes(row[10])).decode()
        snap = json.loads(text)
        snap = from_json(snap) if '"$' in text else snap
        changes = [change_from(c) for c in loads(row[9])]
        resources = [resource_from(r) for r in snap["resources"]]
        outputs = snap["outputs"]
    except (zlib.error, TypeError, ValueError, KeyError):
        raise Corrupt(f"checkpoint {row[0]} does not decode") from None
    return CheckpointDetail(checkpoint_row(row[:9]), changes, resources, outputs)


def compress_snapshot(rows: list[Any], outputs_text: str) -> bytes:
    return zlib.compress(snapshot_json(rows, outputs_text).encode(), 6)
