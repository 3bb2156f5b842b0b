"""Pure encoding helpers shared by the state backends (SQLite, PostgreSQL, S3).

Every backend stores values in the same text form (``marker_json``/``from_json``
markers for unknowns, ``{"$encrypted": token}`` for secrets) and checkpoint snapshots
in the same compressed JSON, so a row means the same thing whichever database holds it.

Secrets are sealed by a ``SecretCipher`` the store is given (the keyring of the stack
being worked on): the state layer never sees a key, and stores nothing in plain text
that was marked secret, at any depth.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import uuid
import zlib
from _json import make_encoder
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, Protocol

from stackwright.errors import LockHeldError, NotRecordedError, ReadOnlyStateError, StackwrightError, StateError
from stackwright.model.values import UNKNOWN, Secret, from_json, marker_json, to_json
from stackwright.state.records import (
    Change, Checkpoint, CheckpointDetail, LockInfo, PendingOperation, ResourceState,
)

SNAPSHOT_FORMAT: Final = 1
SNAPSHOT_LEVEL: Final = 3
"""zlib level of checkpoint snapshots: level 6 took twice the time for 14 % less space
(a checkpoint of every `up` compresses the whole stack)."""

_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""The C string quoter behind ``json.dumps``, without its per-call overhead."""
_BOOL: Final = {False: "false", True: "true"}


class Corrupt(StateError):
    """A stored row could not be decoded; turned into StateError with the file path."""


ENCRYPTED: Final = "$encrypted"


class SecretCipher(Protocol):
    """Seals a secret's JSON into a token and opens it again; raises a StackwrightError
    (wrong key, altered token) that the store lets through unchanged."""

    def seal(self, plain: bytes) -> str: ...

    def open(self, token: str) -> bytes: ...


class Resealer(Protocol):
    """How `secrets rotate` re-encrypts one stack's stored secrets, token by token: the
    store hands it every sealed token and stores what it returns, and never sees a key."""

    def reseal(self, token: str) -> str:
        """``token`` sealed anew, or ``token`` itself where it stays as it is; raises a
        StackwrightError when it does not open (wrong key, altered token)."""

    def seal(self, plain: bytes) -> str | None:
        """A secret a store made before encryption kept in plain text (``{"$secret":
        value}``, ``plain`` its JSON), sealed; None leaves it as it is."""


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=marker_json)


def _make_encoder(default: Callable[[Any], Any]) -> Callable[[Any, int], Sequence[str]]:
    """The C encoder behind ``json.dumps(separators=(",", ":"), default=default)``,
    made once: ``JSONEncoder.encode`` builds it again on every call, which cost more
    than encoding a resource's inputs. Without the circular-reference check (our
    values are trees; a cycle raises RecursionError instead of ValueError)."""
    return make_encoder(None, default, _quote, None, ":", ",", False, False, True)


class ValueCodec:
    """Stored form of values with secrets sealed by ``cipher``. Without a cipher a
    secret cannot be written (``NoCipher``); stores made before encryption existed hold
    ``{"$secret": ...}`` markers, which are still read."""

    def __init__(self, cipher: SecretCipher | None = None) -> None:
        self.cipher = cipher
        self._encode = _make_encoder(self._default)

    def _default(self, value: Any) -> Any:
        if isinstance(value, Secret):
            return {ENCRYPTED: self.seal(value)}
        return marker_json(value)

    def seal(self, secret: Secret) -> str:
        if self.cipher is None:
            raise StateError("a secret cannot be stored: this state store was opened without a key",
                             hint="open stores through stackwright.operations.session.open_store")
        return self.cipher.seal(_ENCODER.encode(to_json(secret.value)).encode())

    def dumps(self, value: Any) -> str:
        """Compact stored form. Markers are written by the encoder's ``default`` hook,
        so plain values never leave C."""
        return "".join(self._encode(value, 0))

    def loads(self, text: str) -> Any:
        """Inverse of ``dumps``; skips the marker walk when the text cannot hold one."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            raise Corrupt("a stored JSON value does not decode") from None
        return self.decode(value) if '"$' in text else value

    def decode(self, value: Any) -> Any:
        """``from_json`` that also opens ``{"$encrypted": token}``."""
        if isinstance(value, dict):
            if len(value) == 1:
                if ENCRYPTED in value:
                    return Secret(self.decode(self._open(value[ENCRYPTED])))
                if "$secret" in value:
                    return Secret(self.decode(value["$secret"]))
                if value.get("$unknown") is True:
                    return UNKNOWN
            return {k: self.decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        return value

    def _open(self, token: Any) -> Any:
        if self.cipher is None:
            raise StateError("the state holds encrypted secrets and no key was given to read them",
                             hint="open stores through stackwright.operations.session.open_store")
        try:
            return json.loads(self.cipher.open(str(token)).decode())  # str: json skips detecting the encoding
        except ValueError:  # UnicodeDecodeError included
            raise Corrupt("a decrypted secret does not decode") from None


def resealed(text: str, resealer: Resealer) -> str:
    """A stored value with each sealed token replaced by what ``resealer`` makes of it
    (and each plain-text secret of an old store sealed, if it seals them). Only the
    tokens change: a secret's content is sealed again byte for byte, never decoded. The
    text itself is returned when nothing changed."""
    if '"$' not in text:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        raise Corrupt("a stored JSON value does not decode") from None
    changed = _resealed(value, resealer)
    return text if changed is value else _ENCODER.encode(changed)


def _resealed(value: Any, resealer: Resealer) -> Any:
    """``value`` (stored form) resealed; ``value`` itself when nothing in it changed."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(ENCRYPTED), str):
            token = resealer.reseal(value[ENCRYPTED])
            return value if token == value[ENCRYPTED] else {ENCRYPTED: token}
        if len(value) == 1 and "$secret" in value:
            sealed = resealer.seal(_ENCODER.encode(value["$secret"]).encode())
            return value if sealed is None else {ENCRYPTED: sealed}
        items = {k: _resealed(v, resealer) for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    if isinstance(value, list):
        entries = [_resealed(v, resealer) for v in value]
        return value if all(e is v for e, v in zip(entries, value)) else entries
    return value


PLAIN: Final = ValueCodec()
"""For values that hold no secrets (counts, dependencies, audit events)."""


class StoredOutputs:
    """A stack's recorded outputs as stored (``serial`` 0: never applied), read without
    its resources (``has_resources`` says whether it records any); secrets are opened,
    with the stack's own keys, only when asked."""

    __slots__ = ("serial", "text", "has_resources")

    def __init__(self, serial: int, text: str, has_resources: bool) -> None:
        self.serial = serial
        self.text = text
        self.has_resources = has_resources

    def open(self, cipher: Callable[[], SecretCipher]) -> dict[str, Any]:
        """The outputs in working form; ``cipher`` is called only if they hold a marker."""
        codec = ValueCodec(cipher()) if '"$' in self.text else PLAIN
        outputs: dict[str, Any] = codec.loads(self.text)
        return outputs


def dumps(value: Any) -> str:
    return PLAIN.dumps(value)


def loads(text: str) -> Any:
    return PLAIN.loads(text)


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
            _to_oldest_generation()
            gc.enable()


def _to_oldest_generation() -> None:
    """What was made while the collector was paused (a state snapshot, a program's
    graph: long-lived, mostly acyclic) goes to the oldest generation, which only a full
    collection scans; left young, the first collection after the pause scanned all of
    it at once (seconds for 10^4 Kubernetes manifests). Nothing is kept alive by this."""
    gc.freeze()
    gc.unfreeze()


def no_stack(stack: str) -> NotRecordedError:
    return NotRecordedError(f"no stack named {stack!r}", hint="stackwright stack ls / stack init NAME")


def stacks_named(names: Sequence[str]) -> str:
    """``stack 'a'`` or ``stacks 'a', 'b'``, for messages about one or several."""
    return ("stack " if len(names) == 1 else "stacks ") + ", ".join(repr(n) for n in names)


def already_there(names: Sequence[str], where: str, hint: str = "") -> StateError:
    """An import that would overwrite: it names every stack in the way, and wrote nothing."""
    verb, them = ("exists", "it") if len(names) == 1 else ("exist", "them")
    return StateError(f"{stacks_named(names)} already {verb} in {where}; nothing was copied",
                      hint=hint or f"remove {them} there first, or migrate to another store")


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


def lock_holder(lock: LockInfo) -> str:
    """Who holds a lock, doing what, since when: enough to judge whether it still runs."""
    return (f"{lock.owner} (pid {lock.pid} on {lock.host}), running {lock.operation!r}, "
            f"taken {ago(time.time() - lock.acquired_at)} ago")


def lock_held(stack: str, lock: LockInfo) -> LockHeldError:
    return LockHeldError(
        f"stack {stack!r} is locked by {lock_holder(lock)}",
        hint="wait for it to finish; if it crashed, run `stackwright unlock` "
        "after confirming the holder is gone",
    )


def no_checkpoint(stack: str, number: int) -> NotRecordedError:
    return NotRecordedError(f"stack {stack!r} has no checkpoint {number}", hint="stackwright history")


def read_only_error(what: str) -> ReadOnlyStateError:
    return ReadOnlyStateError(
        f"cannot {what}: the state store is open read-only "
        "(STACKWRIGHT_STATE_READ_ONLY=1 or `state: read_only: true`)",
        hint="reads and previews work; run changes where the state is writable")


def resource_params(stack: str, r: ResourceState, values: ValueCodec,
                    inputs_text: str | None = None) -> tuple[Any, ...]:
    """A row's parameters; ``inputs_text``: ``r.inputs`` already encoded by ``values``."""
    return (
        stack, r.urn, r.type, r.id, values.dumps(r.inputs) if inputs_text is None else inputs_text,
        values.dumps(r.outputs), r.parent,
        strings_json(r.deps), int(r.protect), int(r.retain_on_delete), int(r.external),
        dumps(r.options) if r.options else "{}",
    )


def strings_json(items: Sequence[str]) -> str:
    """``dumps`` of a list of strings (a resource's dependencies) without the encoder,
    whose set-up per call cost more than quoting one or two URNs."""
    return "[" + ",".join(map(_quote, items)) + "]"


def resource_rows(rows: Sequence[Any], values: ValueCodec) -> dict[str, ResourceState]:
    """Rows in the stores' resource column order (urn, type, id, inputs, outputs, parent,
    deps, protect, retain_on_delete, external, options)."""
    return snapshot_rows([(*r[:7], r[10], bool(r[7]) | bool(r[8]) << 1 | bool(r[9]) << 2) for r in rows], values)


def snapshot_rows(rows: Sequence[Any], values: ValueCodec,
                  into: dict[str, ResourceState] | None = None) -> dict[str, ResourceState]:
    """Rows of urn, type, id, inputs, outputs, parent, deps, options and the flags
    (protect 1, retain_on_delete 2, external 4), decoded with one ``json.loads``
    (per-call overhead dominated snapshot()) and added to ``into`` when given: a
    snapshot decodes a batch at a time, so that the next batch is read into the memory
    the last one's text and rows were in."""
    text = "[" + ",".join([f"[{r[3]},{r[4]},{r[6]},{r[7]}]" for r in rows]) + "]"
    try:
        decoded = json.loads(text)
    except (TypeError, ValueError):
        raise Corrupt("a stored resource does not decode") from None
    if len(decoded) != len(rows):
        raise Corrupt("a stored resource does not decode")
    found: dict[str, ResourceState] = {} if into is None else into
    for row, value in zip(rows, decoded):
        found[row[0]] = resource_row(row, value, values)
    return found


def resource_row(row: Sequence[Any], value: Any, codec: ValueCodec) -> ResourceState:
    urn, type_, id_, inputs_text, outputs_text, parent, _, _, flags = row
    try:
        inputs, outputs, deps, options = value
    except (TypeError, ValueError):
        raise Corrupt(f"resource {urn} does not decode") from None
    if not (isinstance(inputs, dict) and isinstance(outputs, dict) and isinstance(deps, list)
            and isinstance(options, dict)):
        raise Corrupt(f"resource {urn} does not decode")
    if '"$' in inputs_text:
        inputs = codec.decode(inputs)
    if '"$' in outputs_text:
        outputs = codec.decode(outputs)
    return ResourceState(
        urn, type_, id_, inputs, outputs, parent, deps,
        bool(flags & 1), bool(flags & 2), bool(flags & 4), options,
    )


def pending_row(row: Sequence[Any], values: ValueCodec) -> PendingOperation:
    token, urn, type_, op, inputs, resource_id, parent, deps, started_at = row
    return PendingOperation(
        token, urn, type_, op, values.loads(inputs), resource_id, parent, loads(deps), started_at
    )


def checkpoint_row(row: Sequence[Any]) -> Checkpoint:
    number, kind, who, started, finished, result, counts, message, serial = row
    return Checkpoint(number, kind, who, started, finished, result, loads(counts), message, serial)


FAILED: Final = "failed"
"""The key under which a checkpoint's counts hold its failed changes."""


class Operation:
    """One writer's operation (`up`, `destroy`...): who, since when, what it changed
    (counts by kind, changes in order) and whether it finished. Changes may be noted
    from a commit thread and the engine's thread at once."""

    def __init__(self, stack: str, kind: str, who: str) -> None:
        self.stack, self.kind, self.who = stack, kind, who
        self.started_at = time.time()
        self.counts: dict[str, int] = {}
        self.changes: list[Change] = []
        self.finished = False
        self._lock = threading.Lock()
        self.id = uuid.uuid4().hex
        """Tells this operation's stored open row from a leftover one (``open_operation``)."""
        self.holder = ""
        """The lock it runs under, as stored with the open operation."""
        self._unsaved: list[Change] = []

    def check_open(self) -> None:
        if self.finished:
            raise StateError(f"the {self.kind} on stack {self.stack!r} already finished")

    def note(self, change: Change | None) -> None:
        """A checkpoint's counts say what was applied: a failed change (one with an
        error) counts as ``failed``, never under its op."""
        if change is not None:
            key = FAILED if change.error is not None else change.op
            with self._lock:
                self.counts[key] = self.counts.get(key, 0) + 1
                self.changes.append(change)

    def note_unsaved(self, change: Change) -> None:
        """A change no write records (a failed step): noted now, stored with the next write."""
        self.note(change)
        with self._lock:
            self._unsaved.append(change)

    def take_unsaved(self) -> list[Change]:
        if not self._unsaved:  # a list's truth is read atomically; an append under way is taken next time
            return []
        with self._lock:
            unsaved, self._unsaved = self._unsaved, []
        return unsaved

    def encode(self, change: Change) -> str:
        """One change as stored with the open operation. Not kept: holding every line
        until the checkpoint cost ~20 MB over a 50,000-resource ``up``."""
        return change_text(change)

    def changes_json(self) -> str:
        with self._lock:
            changes = list(self.changes)
        return "[" + ",".join([change_text(c) for c in changes]) + "]"


def change_text(change: Change) -> str:
    """``dumps(change_json(change))``; a change without diffs or error (most of them)
    is written directly."""
    if change.diffs or change.error is not None:
        return dumps(change_json(change))
    q = _quote
    return f'{{"urn":{q(change.urn)},"type":{q(change.type)},"op":{q(change.op)},"diffs":[],"error":null}}'


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
    return "".join(_snapshot_parts([rows], outputs_text))


def _snapshot_parts(batches: Iterable[Sequence[Any]], outputs_text: str) -> Iterator[str]:
    """``snapshot_json`` in pieces, one per batch of rows."""
    q = _quote
    yield f'{{"format":{SNAPSHOT_FORMAT},"resources":['
    separator = ""
    for rows in batches:
        if not rows:
            continue
        yield separator + ",".join([
            f'{{"urn":{q(urn)},"type":{q(type_)},"id":{q(id_)},"inputs":{inputs},'
            f'"outputs":{outputs},"parent":{"null" if parent is None else q(parent)},'
            f'"deps":{deps},"protect":{_BOOL[bool(p)]},"retain_on_delete":{_BOOL[bool(r)]},'
            f'"external":{_BOOL[bool(e)]},"options":{options}}}'
            for urn, type_, id_, inputs, outputs, parent, deps, p, r, e, options in rows
        ])
        separator = ","
    yield f'],"outputs":{outputs_text}}}'


def checkpoint_detail(row: Sequence[Any], values: ValueCodec) -> CheckpointDetail:
    """Decode ``checkpoint columns..., changes, snapshot`` (the snapshot compressed)."""
    try:
        text = zlib.decompress(bytes(row[10])).decode()
    except (zlib.error, TypeError, ValueError):
        raise Corrupt(f"checkpoint {row[0]} does not decode") from None
    return checkpoint_detail_text(row[:9], row[9], text, values)


def checkpoint_detail_text(header: Sequence[Any], changes_text: str, snapshot_text: str,
                           values: ValueCodec) -> CheckpointDetail:
    """Decode a checkpoint from its columns, its changes and its snapshot as JSON text."""
    try:
        snap = json.loads(snapshot_text)
        snap = values.decode(snap) if '"$' in snapshot_text else snap
        changes = [change_from(c) for c in loads(changes_text)]
        resources = [resource_from(r) for r in snap["resources"]]
        outputs = snap["outputs"]
        checkpoint = checkpoint_row(header)
    except (TypeError, ValueError, KeyError):
        raise Corrupt(f"checkpoint {header[0]} does not decode") from None
    return CheckpointDetail(checkpoint, changes, resources, outputs)


def compress_snapshot(batches: Iterable[Sequence[Any]], outputs_text: str) -> bytes:
    """The compressed snapshot of the resource rows, read a batch at a time: the rows,
    their JSON and its bytes of a 50,000-resource stack never sit in memory whole (they
    were most of the peak of a big first `up`)."""
    compressor = zlib.compressobj(SNAPSHOT_LEVEL)
    blob = [compressor.compress(part.encode()) for part in _snapshot_parts(batches, outputs_text)]
    blob.append(compressor.flush())
    return b"".join(blob)


def row_batches(cursor: Any, size: int = 2000) -> Iterator[list[Any]]:
    """A database cursor's rows, ``size`` at a time."""
    while rows := cursor.fetchmany(size):
        yield rows
