"""The S3 state store: a bucket (and key prefix) shared by every runner of a team, with
no database server.

Same semantics as the SQL stores (``state/sql_store.py``, the reference): a lineage and
a serial per stack that every state write bumps (a ``batch()`` once), pending
operations cleared in the commit that records the outcome, checkpoints with compressed
snapshots, an append-only event log and an exclusive lock per stack. Values are stored
in exactly the same text form (``state/codec.py``), so ``state migrate`` moves rows
between backends verbatim.

Objects under ``s3://bucket/prefix/``::

    stacks/<stack>/head.json               the stack's state at serial N (the base)
    stacks/<stack>/journal/<lineage>/<serial>.json
                                           one object per commit after N: what it changed
    stacks/<stack>/checkpoints/<n>.json.z  one checkpoint: header, changes, snapshot
    stacks/<stack>/lock.json               the stack lock, with the holder and a lease
    events/<id>.json                       the audit log, one object per event

S3's conditional writes make this safe without a server. A commit creates the journal
object of the next serial with ``If-None-Match: *``: of two writers only one can commit
serial N+1, and the other re-reads and retries (optimistic serials). ``finish()`` folds
the journal into a new head, replaced with ``If-Match: <ETag of the head it read>``. The
lock is created with ``If-None-Match: *``; its holder renews its lease from a background
thread, and a lock whose lease ran out (its holder was killed) is taken over with
``If-Match`` on that lock's ETag, so two runners taking over never both win.

Durability contract (``store.py``): a ``StackWriter`` method returns after S3 stored its
journal object, so a SIGKILL loses nothing; a crash leaves the head plus journal, which
every reader replays. Turn on versioning for the bucket: it keeps every earlier head,
journal object and checkpoint, so an operator can recover from a mistake.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlsplit

from stackwright.emulator_endpoints import EMULATOR_CREDENTIALS, is_emulator
from stackwright.errors import LockHeldError, StateError
from stackwright.state.codec import (
    Corrupt, Operation, Resealer, SecretCipher, ValueCodec, already_there, checkpoint_detail_text, checkpoint_row,
    dumps, gc_paused, loads, lock_held, no_checkpoint, no_stack, pending_row, read_only_error, resealed,
    resource_params, resource_rows, snapshot_json, stacks_named,
)
from stackwright.state.open_operation import INTERRUPTED, OpenOperation, holder_text, note_row, open_row
from stackwright.state.records import (
    SCHEMA_VERSION, Change, Checkpoint, CheckpointDetail, Event, LockInfo, PendingOperation,
    ResourceState, Snapshot, StackInfo, StackRecord, in_logged_order,
)

if TYPE_CHECKING:
    from stackwright.state.store import StackWriter, StateStore

DEFAULT_LEASE_S: Final = 300.0
"""How long a lock outlives its holder's last renewal: a killed runner's lock can be
taken over after this. Renewed every third of it while held."""
_READERS: Final = 16
_RETRIES: Final = 8
_CONFLICT: Final = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
_MISSING: Final = ("NoSuchKey", "404", "NotFound")
_DELETE_CHUNK: Final = 1000

Row = list[Any]


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str | None = None
    lease: float = DEFAULT_LEASE_S

    @property
    def shown(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/prefix?region=eu-west-1&endpoint=http://127.0.0.1:4599&lease=300``.
    Region, endpoint and credentials otherwise come from the usual AWS settings
    (``AWS_DEFAULT_REGION`` or ``AWS_REGION``, ``AWS_ENDPOINT_URL_S3``, profiles, OIDC
    web identity...)."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    unknown = sorted(set(options) - {"region", "endpoint", "lease"})
    if parts.scheme.lower() != "s3" or not parts.netloc or unknown:
        raise StateError(
            f"unsupported S3 state URL {url!r}" + (f" (unknown option {unknown[0]!r})" if unknown else ""),
            hint="s3://bucket/prefix, optionally ?region=...&endpoint=...&lease=SECONDS")
    prefix = parts.path.strip("/")
    try:
        lease = float(options.get("lease", DEFAULT_LEASE_S))
    except ValueError:
        raise StateError(f"lease={options['lease']!r} in the S3 state URL is not a number of seconds") from None
    return S3Location(parts.netloc, f"{prefix}/" if prefix else "", options.get("endpoint"),
                      options.get("region"), lease)


@dataclass
class _Stack:
    """A stack's state as stored: rows in the SQL stores' column order, values as text.

    Never mutated once shared: writers change a ``copy()``."""

    lineage: str
    serial: int
    created_at: float
    updated_at: float | None
    outputs: str
    resources: dict[str, Row]
    pending: dict[str, Row]
    history: list[Row] = field(default_factory=list)
    etag: str = ""
    """ETag of the head this state was read from."""
    base: int = 0
    """The head's serial: journal objects after it hold the rest."""
    operation: Row | None = None
    """The open operation (``open_operation.py``): id, kind, who, started_at, holder, and
    its changes as a list of JSON-lines chunks (one per write: never rewritten)."""

    def copy(self) -> _Stack:
        return replace(self, resources=dict(self.resources), pending=dict(self.pending),
                       history=list(self.history))

    def head(self) -> dict[str, Any]:
        return {"format": SCHEMA_VERSION, "lineage": self.lineage, "serial": self.serial,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "outputs": self.outputs, "resources": list(self.resources.values()),
                "pending": list(self.pending.values()), "history": self.history,
                "operation": self.operation}


def _stack_from_head(doc: dict[str, Any], etag: str) -> _Stack:
    return _Stack(doc["lineage"], int(doc["serial"]), float(doc["created_at"]), doc["updated_at"],
                  doc["outputs"], {r[0]: r for r in doc["resources"]},
                  {p[0]: p for p in doc["pending"]}, list(doc.get("history", [])), etag,
                  int(doc["serial"]), doc.get("operation"))


def apply_op(state: _Stack, op: Sequence[Any]) -> None:
    """One change of a commit, exactly as the SQL stores make it."""
    kind = op[0]
    if kind == "resource":
        state.resources[op[1][0]] = list(op[1])
    elif kind == "forget":
        row = state.resources.get(op[1])
        if row is not None and (op[2] is None or row[2] == op[2]):
            del state.resources[op[1]]
    elif kind == "pending":
        state.pending[op[1][0]] = list(op[1])
    elif kind == "done":
        state.pending.pop(op[1], None)
    elif kind == "rename":
        _rename(state, op[1], op[2])
    elif kind == "outputs":
        state.outputs = op[1]
    elif kind == "operation":
        _note_open(state, op[1])
    elif kind == "closed":
        if state.operation is not None and state.operation[0] == op[1]:
            state.operation = None
    else:
        raise Corrupt(f"a journal entry holds an unknown change {kind!r}")


def _note_open(state: _Stack, row: Row) -> None:
    """As ``NOTE_OPEN`` in the SQL stores: open it, or append the changes of the same
    operation; a leftover of another one stays for ``begin`` to close."""
    chunks = [row[5]] if row[5] else []
    if state.operation is None:
        state.operation = [*row[:5], chunks]
    elif state.operation[0] == row[0] and chunks:
        state.operation = [*state.operation[:5], [*state.operation[5], *chunks]]


def _rename(state: _Stack, old: str, new: str) -> None:
    """Move a row to a new URN in place (keeping its position), and every parent or
    dependency reference to it."""
    quoted = json.dumps(old)
    moved: dict[str, Row] = {}
    for urn, row in state.resources.items():
        if urn == old:
            row = [new, *row[1:]]
        if row[5] == old or quoted in row[6]:
            row = list(row)
            row[5] = new if row[5] == old else row[5]
            row[6] = dumps([new if d == old else d for d in loads(row[6])])
        moved[row[0]] = row
    state.resources = moved


class S3StateStore:
    """``StateStore`` over objects in an S3 bucket (``s3://bucket/prefix``)."""

    def __init__(self, url: str, read_only: bool = False) -> None:
        self.url = url
        self.where = parse_s3_url(url)
        self.read_only = read_only
        self.values = ValueCodec()
        self._client = _client(self.where)
        self._cache: dict[str, _Stack] = {}
        self._events: dict[int, dict[str, Any]] = {}
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._pool: ThreadPoolExecutor | None = None
        with self._guard():
            self._check_bucket()

    # --- plumbing -----------------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return self.where.prefix + "/".join(parts)

    def _stack_key(self, stack: str, *parts: str) -> str:
        return self._key("stacks", stack, *parts)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn S3 and decode failures into StateError naming the bucket."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except Corrupt as exc:
            raise StateError(f"S3 state store {self.where.shown} is corrupt: {exc}",
                             hint="restore it from a backup (or earlier object versions: keep bucket "
                             "versioning on); stackwright will not modify or repair it") from None
        except ClientError as exc:
            raise self._client_error(exc) from exc
        except BotoCoreError as exc:
            raise StateError(f"S3 state store {self.where.shown}: {exc}",
                             hint="check the endpoint, region and AWS credentials") from exc

    def _client_error(self, exc: Any) -> StateError:
        code = _code(exc)
        if code == "NoSuchBucket" or (code == "404" and getattr(exc, "operation_name", "") == "HeadBucket"):
            return StateError(f"the bucket of the S3 state store {self.where.shown} does not exist",
                              hint=f"create it first (with versioning on): aws s3api create-bucket "
                              f"--bucket {self.where.bucket}")
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return StateError(f"S3 state store {self.where.shown}: access denied ({code})",
                              hint="check the AWS credentials and that they may read and write the bucket")
        return StateError(f"S3 state store {self.where.shown}: {exc}")

    def _check_bucket(self) -> None:
        self._client.head_bucket(Bucket=self.where.bucket)

    def _refuse_write(self, what: str) -> None:
        if self.read_only:
            raise read_only_error(what)

    def _get(self, key: str, if_none_match: str | None = None) -> tuple[bytes, str] | None:
        """The object's body and ETag; None when missing (or unchanged from
        ``if_none_match``: then the body is empty)."""
        from botocore.exceptions import ClientError

        extra = {"IfNoneMatch": if_none_match} if if_none_match else {}
        try:
            got = self._client.get_object(Bucket=self.where.bucket, Key=key, **extra)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            if _code(exc) in ("304", "NotModified"):
                return b"", if_none_match or ""
            raise
        return got["Body"].read(), str(got["ETag"])

    def _put(self, key: str, body: bytes, *, create: bool = False, if_match: str | None = None) -> str | None:
        """Write ``body``; with ``create`` only if the key is new, with ``if_match`` only
        over that version. The new ETag, or None when the condition failed."""
        from botocore.exceptions import ClientError

        extra: dict[str, str] = {}
        if create:
            extra["IfNoneMatch"] = "*"
        if if_match:
            extra["IfMatch"] = if_match
        try:
            put = self._client.put_object(Bucket=self.where.bucket, Key=key, Body=body, **extra)
        except ClientError as exc:
            if _code(exc) in _CONFLICT or (if_match and _code(exc) in _MISSING):
                return None
            raise
        return str(put["ETag"])

    def _delete(self, key: str, if_match: str | None = None) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.delete_object(Bucket=self.where.bucket, Key=key,
                                       **({"IfMatch": if_match} if if_match else {}))
        except ClientError as exc:
            if _code(exc) in _CONFLICT or _code(exc) in _MISSING:
                return False
            raise
        return True

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_CHUNK):
            chunk = keys[start:start + _DELETE_CHUNK]
            self._client.delete_objects(Bucket=self.where.bucket, Delete={
                "Objects": [{"Key": k} for k in chunk], "Quiet": True})

    def _list(self, prefix: str, start_after: str = "") -> list[str]:
        keys: list[str] = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.where.bucket, Prefix=prefix, StartAfter=start_after or prefix)
        for page in pages:
            keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        return keys

    def _get_many(self, keys: list[str]) -> list[tuple[bytes, str] | None]:
        """GETs in parallel: a crashed run's journal or the audit log are many small objects."""
        if len(keys) < 3:
            return [self._get(k) for k in keys]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_READERS, thread_name_prefix="s3-state")
        return list(self._pool.map(self._get, keys))

    # --- reading a stack ----------------------------------------------------------------

    def _journal_key(self, stack: str, lineage: str, serial: int) -> str:
        """Under the lineage: a writer of a removed stack never collides with the
        writers of a new stack of the same name (it finds the removal's tombstone)."""
        return self._stack_key(stack, "journal", lineage, f"{serial:012d}.json")

    def _load(self, stack: str) -> _Stack:
        """The stack's current state: head plus journal. Retried when a compaction
        removes journal objects between listing and reading them."""
        for _ in range(_RETRIES):
            state = self._try_load(stack)
            if state is not None:
                self._cache[stack] = state
                return state
        raise StateError(f"S3 state store {self.where.shown}: stack {stack!r} kept changing while read",
                         hint="try again")

    def _try_load(self, stack: str) -> _Stack | None:
        cached = self._cache.get(stack)
        got = self._get(self._stack_key(stack, "head.json"), cached.etag if cached else None)
        if got is None:
            self._cache.pop(stack, None)
            raise no_stack(stack)
        body, etag = got
        if cached is not None and not body:
            state = cached.copy()
        else:
            state = _stack_from_head(self._decode_head(body), etag)
        keys = self._list(self._stack_key(stack, "journal", state.lineage, ""),
                          self._journal_key(stack, state.lineage, state.serial))
        bodies = self._get_many(keys)
        with gc_paused():
            for key, entry in zip(keys, bodies):
                if entry is None:
                    return None
                doc = _json(entry[0])
                if doc.get("removed"):
                    raise no_stack(stack)
                if key != self._journal_key(stack, state.lineage, state.serial + 1):
                    return None
                for op in doc["ops"]:
                    apply_op(state, op)
                state.serial += 1
                state.updated_at = doc.get("at", state.updated_at)
        return state

    def _decode_head(self, body: bytes) -> dict[str, Any]:
        doc = _json(body)
        version = doc.get("format")
        if not isinstance(version, int):
            raise Corrupt("a stack head has no readable format version")
        if version > SCHEMA_VERSION:
            raise StateError(
                f"S3 state store {self.where.shown} has schema version {version}, newer than "
                f"the version {SCHEMA_VERSION} this stackwright understands",
                hint="upgrade stackwright to use it; the bucket was left unchanged")
        return doc

    def _commit(self, stack: str, state: _Stack, ops: list[Any]) -> _Stack:
        """Write ``ops`` as the journal object of ``state``'s next serial and return the
        state after them. When another writer took that serial, re-read and apply the
        ops on top of its commit instead (a removed stack ends it: ``no_stack``)."""
        self._refuse_write(f"write the state of stack {stack!r}")
        for _ in range(_RETRIES):
            after = state.copy()
            for op in ops:
                apply_op(after, op)
            after.serial += 1
            after.updated_at = time.time()
            entry = {"format": SCHEMA_VERSION, "lineage": state.lineage, "serial": after.serial,
                     "at": after.updated_at, "ops": ops}
            if self._put(self._journal_key(stack, state.lineage, after.serial), _body(entry), create=True):
                self._cache[stack] = after
                return after
            self._cache.pop(stack, None)
            lineage, state = state.lineage, self._load(stack)
            if state.lineage != lineage:
                raise StateError(f"stack {stack!r} was removed and made again while this writer ran",
                                 hint="run the command again")
        raise StateError(f"stack {stack!r} in {self.where.shown} kept changing under this writer",
                         hint="is another stackwright writing it without the lock? try again")

    def _compact(self, stack: str, state: _Stack) -> None:
        """Fold the journal into a new head (``If-Match`` the head it was read from),
        then delete the folded journal objects. Losing the race to another compaction
        is harmless: readers replay the journal either way."""
        if state.serial == state.base and state.etag:
            return
        etag = self._put(self._stack_key(stack, "head.json"), _body(state.head()), if_match=state.etag)
        if etag is None:
            return
        folded = [self._journal_key(stack, state.lineage, s) for s in range(state.base + 1, state.serial + 1)]
        self._cache[stack] = replace(state.copy(), etag=etag, base=state.serial)
        self._delete_keys(folded)

    # --- StateStore -----------------------------------------------------------------------

    def use_cipher(self, cipher: SecretCipher) -> None:
        self.values = ValueCodec(cipher)

    def reseal(self, resealers: Mapping[str, Resealer]) -> list[str]:
        """Every token of every stack named is resealed first, so a secret that does not
        open (wrong key, altered token) changes nothing; then each stack's changed
        checkpoints and events are rewritten, its head last. (Objects are written one by
        one: a failure to write part way leaves the stacks before resealed, and the rest
        as they were, each consistent.)"""
        self._refuse_write(f"re-encrypt the state of {stacks_named(list(resealers))}")
        with self._guard():
            planned = [(stack, *self._resealed(stack, resealer)) for stack, resealer in resealers.items()]
            for stack, state, checkpoints, events in planned:
                for key, (header, changes, snapshot) in checkpoints:
                    self._put(key, _checkpoint_body(header, changes, snapshot))
                for doc in events:
                    self._put(self._event_key(doc["id"]), _body(doc))
                    self._events[doc["id"]] = doc
                if state is not None:
                    self._compact_or_fail(stack, state)
        return [stack for stack, state, checkpoints, events in planned if state or checkpoints or events]

    def _resealed(self, stack: str, resealer: Resealer) -> tuple[
            _Stack | None, list[tuple[str, tuple[Row, str, str]]], list[dict[str, Any]]]:
        """What reseals ``stack``: its state (None when unchanged), and its checkpoints and
        events that change."""
        state = self._load(stack).copy()
        changed = False
        for urn, row in list(state.resources.items()):
            again = [*row[:3], resealed(row[3], resealer), resealed(row[4], resealer), *row[5:]]
            changed = changed or again != row
            state.resources[urn] = again
        for token, row in list(state.pending.items()):
            again = [*row[:4], resealed(row[4], resealer), *row[5:]]
            changed = changed or again != row
            state.pending[token] = again
        outputs = resealed(state.outputs, resealer)
        changed = changed or outputs != state.outputs
        state.outputs = outputs
        checkpoints = []
        for key in self._checkpoint_keys(stack):
            header, changes, snapshot = self._checkpoint_parts(key)
            if (again_snapshot := resealed(snapshot, resealer)) != snapshot:
                checkpoints.append((key, (header, changes, again_snapshot)))
        events = []
        for doc in self._event_docs():
            if doc["stack"] == stack and (data := resealed(doc["data"], resealer)) != doc["data"]:
                events.append({**doc, "data": data})
        return (state if changed else None), checkpoints, events

    def _compact_or_fail(self, stack: str, state: _Stack) -> None:
        etag = self._put(self._stack_key(stack, "head.json"), _body(state.head()), if_match=state.etag)
        if etag is None:
            raise StateError(f"stack {stack!r} changed while it was being rewritten", hint="try again")
        self._cache.pop(stack, None)
        journal = self._list(self._stack_key(stack, "journal", state.lineage, ""))
        self._delete_keys([k for k in journal if k <= self._journal_key(stack, state.lineage, state.serial)])

    def __enter__(self) -> S3StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stack_names(self) -> list[str]:
        prefix = self._key("stacks/")
        names: list[str] = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.where.bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            names.extend(p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", ()))
        return sorted(names)

    def list_stacks(self) -> list[StackInfo]:
        infos: list[StackInfo] = []
        with self._guard():
            for name in self._stack_names():
                try:
                    state = self._load(name)
                except StateError as exc:
                    if exc.message == no_stack(name).message:
                        continue  # leftovers of a removed stack
                    raise
                infos.append(StackInfo(name, len(state.resources), state.updated_at, state.lineage, state.serial))
        return infos

    def create_stack(self, stack: str) -> None:
        self._refuse_write(f"create stack {stack!r}")
        with self._guard():
            head = self._stack_key(stack, "head.json")
            journals = self._stack_key(stack, "journal/")
            leftovers = [k for k in self._list(self._stack_key(stack, "")) if k != head and not k.startswith(journals)]
            if leftovers and self._get(head) is None:
                self._delete_keys(leftovers)  # of a removal that did not finish
            state = _Stack(str(uuid.uuid4()), 0, time.time(), None, "{}", {}, {})
            etag = self._put(head, _body(state.head()), create=True)
        if etag is None:
            raise StateError(f"stack {stack!r} already exists", hint="stackwright stack ls")
        self._cache[stack] = replace(state, etag=etag)

    def stack_exists(self, stack: str) -> bool:
        from botocore.exceptions import ClientError

        with self._guard():
            try:
                self._client.head_object(Bucket=self.where.bucket, Key=self._stack_key(stack, "head.json"))
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    return False
                raise
        return True

    def remove_stack(self, stack: str, force: bool = False) -> None:
        """Leaves a tombstone at the next serial, so a writer still holding the stack
        fails its next commit instead of writing into a removed stack."""
        self._refuse_write(f"remove stack {stack!r}")
        with self._guard():
            state = self._load(stack)
            if state.resources and not force:
                raise StateError(
                    f"stack {stack!r} still has {len(state.resources)} resources",
                    hint="run `stackwright destroy` first, or force the removal to forget "
                    "them (the cloud resources are left running)",
                )
            tombstone = self._journal_key(stack, state.lineage, state.serial + 1)
            while not self._put(tombstone, _body({"removed": True}), create=True):
                state = self._load(stack)
                tombstone = self._journal_key(stack, state.lineage, state.serial + 1)
            self._delete(self._stack_key(stack, "head.json"))
            self._cache.pop(stack, None)
            self._delete_keys([k for k in self._list(self._stack_key(stack, "")) if k != tombstone])

    def snapshot(self, stack: str) -> Snapshot:
        with self._guard():
            state = self._load(stack)
            with gc_paused():
                return Snapshot(
                    stack=stack, lineage=state.lineage, serial=state.serial,
                    resources=resource_rows(list(state.resources.values()), self.values),
                    outputs=self.values.loads(state.outputs),
                    pending=[pending_row(p, self.values) for p in state.pending.values()],
                )

    def pending_count(self, stack: str) -> int:
        with self._guard():
            return len(self._load(stack).pending)

    # --- locks ----------------------------------------------------------------------------

    def _lock_key(self, stack: str) -> str:
        return self._stack_key(stack, "lock.json")

    def _read_lock(self, stack: str) -> tuple[LockInfo, float, str] | None:
        got = self._get(self._lock_key(stack))
        if got is None:
            return None
        doc = _json(got[0])
        info = LockInfo(doc["owner"], int(doc["pid"]), doc["host"], float(doc["acquired_at"]),
                        doc["operation"], doc["token"])
        return info, float(doc["expires_at"]), got[1]

    def _lock_body(self, info: LockInfo) -> bytes:
        return _body({"owner": info.owner, "pid": info.pid, "host": info.host,
                      "acquired_at": info.acquired_at, "operation": info.operation,
                      "token": info.token, "expires_at": time.time() + self.where.lease})

    def acquire_lock(self, stack: str, info: LockInfo) -> None:
        """Create the lock object, or take it over when its holder's lease ran out;
        the holder itself renews it. An empty ``info.token`` is filled in."""
        self._refuse_write(f"take the lock of stack {stack!r}")
        if not info.token:
            info.token = uuid.uuid4().hex
        with self._guard():
            if not self.stack_exists(stack):
                raise no_stack(stack)
            etag = self._take_lock(stack, info)
        self._hold(stack, info.token, etag)

    def _take_lock(self, stack: str, info: LockInfo) -> str:
        key = self._lock_key(stack)
        for _ in range(_RETRIES):
            etag = self._put(key, self._lock_body(info), create=True)
            if etag:
                return etag
            held = self._read_lock(stack)
            if held is None:
                continue  # released meanwhile
            holder, expires_at, held_etag = held
            if holder.token != info.token and expires_at > time.time():
                raise lock_held(stack, holder)
            etag = self._put(key, self._lock_body(info), if_match=held_etag)
            if etag:
                return etag
        winner = self._read_lock(stack)
        if winner is not None:
            raise lock_held(stack, winner[0])
        raise LockHeldError(f"the lock of stack {stack!r} changed hands while taking it", hint="try again")

    def _hold(self, stack: str, token: str, etag: str) -> None:
        lease = self._leases.pop((stack, token), None)
        if lease is not None:
            lease.stop()
        renew = _Lease(lambda etag: self._renew(stack, token, etag), etag, self.where.lease / 3)
        self._leases[(stack, token)] = renew
        renew.start()

    def _renew(self, stack: str, token: str, etag: str) -> str | None:
        """Extend the lease; None when the lock is no longer ours (broken, taken over)."""
        with self._guard():
            held = self._read_lock(stack)
            if held is None or held[0].token != token:
                return None
            return self._put(self._lock_key(stack), self._lock_body(held[0]), if_match=etag)

    def release_lock(self, stack: str, token: str) -> None:
        """No-op if the lock was broken and possibly re-taken by someone else."""
        lease = self._leases.pop((stack, token), None)
        if lease is not None:
            lease.stop()
        self._refuse_write(f"release the lock of stack {stack!r}")
        with self._guard():
            held = self._read_lock(stack)
            if held is not None and held[0].token == token:
                self._delete(self._lock_key(stack), if_match=held[2])

    def read_lock(self, stack: str) -> LockInfo | None:
        with self._guard():
            if not self.stack_exists(stack):
                raise no_stack(stack)
            held = self._read_lock(stack)
        return None if held is None else held[0]

    def break_lock(self, stack: str) -> LockInfo | None:
        self._refuse_write(f"break the lock of stack {stack!r}")
        with self._guard():
            if not self.stack_exists(stack):
                raise no_stack(stack)
            held = self._read_lock(stack)
            if held is not None:
                self._delete(self._lock_key(stack))
        return None if held is None else held[0]

    # --- writers and checkpoints ----------------------------------------------------------

    def begin(self, stack: str, kind: str, who: str) -> S3StackWriter:
        """The caller holds the stack's lock: an operation left open by an earlier
        holder (killed before its checkpoint) is closed first, as ``interrupted``."""
        with self._guard():
            state = self._load(stack)
            if state.operation is not None and not self.read_only:
                state = self._close_leftover(stack, state, open_row(state.operation[:5], "".join(state.operation[5])))
            held = self._read_lock(stack)
        writer = S3StackWriter(self, stack, kind, who, state)
        if held is not None:
            lock = held[0]
            writer._op.holder = holder_text(lock.operation, lock.owner, lock.pid, lock.host)
        return writer

    def _close_leftover(self, stack: str, state: _Stack, leftover: OpenOperation) -> _Stack:
        """Its checkpoint (unless its writer wrote that and was killed before the new
        head closed it), then the journal entry that closes it."""
        last = self.history(stack)[-1:]
        if not any(c.kind == leftover.kind and c.started_at == leftover.started_at for c in last):
            closed = leftover.closed(stack)
            header: Row = [0, leftover.kind, leftover.who, leftover.started_at, time.time(), INTERRUPTED,
                           dumps(closed.counts), leftover.message(), state.serial]
            header = self._write_checkpoint(stack, state, header, closed.changes_json())
            state = replace(state.copy(), history=[*state.history, header])
        return self._commit(stack, state, [["closed", leftover.id]])

    def _checkpoint_key(self, stack: str, number: int) -> str:
        return self._stack_key(stack, "checkpoints", f"{number:08d}.json.z")

    def _checkpoint_keys(self, stack: str) -> list[str]:
        return self._list(self._stack_key(stack, "checkpoints/"))

    def _checkpoint_parts(self, key: str) -> tuple[Row, str, str]:
        got = self._get(key)
        if got is None:
            raise Corrupt(f"checkpoint object {key} vanished while read")
        try:
            header, changes, snapshot = zlib.decompress(got[0]).decode().split("\n", 2)
            return list(json.loads(header)), changes, snapshot
        except (zlib.error, ValueError):
            raise Corrupt(f"checkpoint object {key} does not decode") from None

    def history(self, stack: str) -> list[Checkpoint]:
        """Oldest first; headers from the head, reading only checkpoints it lacks."""
        with self._guard():
            state = self._load(stack)
            known = {int(h[0]): h for h in state.history}
            headers: list[Row] = []
            for key in self._checkpoint_keys(stack):
                number = _number(key)
                headers.append(known[number] if number in known else self._checkpoint_parts(key)[0])
            return [checkpoint_row(h) for h in headers]

    def checkpoint(self, stack: str, number: int) -> CheckpointDetail:
        with self._guard():
            if not self.stack_exists(stack):
                raise no_stack(stack)
            key = self._checkpoint_key(stack, number)
            if self._get(key) is None:
                raise no_checkpoint(stack, number)
            header, changes, snapshot = self._checkpoint_parts(key)
            with gc_paused():
                return checkpoint_detail_text(header, changes, snapshot, self.values)

    def _write_checkpoint(self, stack: str, state: _Stack, header: Row, changes: str) -> Row:
        """Create the next numbered checkpoint object; its snapshot is ``state``."""
        snapshot = snapshot_json(list(state.resources.values()), state.outputs)
        for _ in range(_RETRIES):
            keys = self._checkpoint_keys(stack)
            header = [(_number(keys[-1]) if keys else 0) + 1, *header[1:]]
            if self._put(self._checkpoint_key(stack, header[0]), _checkpoint_body(header, changes, snapshot),
                         create=True):
                return header
        raise StateError(f"could not number a checkpoint of stack {stack!r}: others kept writing", hint="try again")

    # --- events ---------------------------------------------------------------------------

    def _event_key(self, event_id: int) -> str:
        return self._key("events", f"{event_id:012d}.json")

    def record_event(self, stack: str, kind: str, who: str, data: dict[str, Any]) -> Event:
        self._refuse_write(f"record a {kind!r} event of stack {stack!r}")
        at = time.time()
        with self._guard():
            event_id = self._append_event(stack, kind, who, at, self.values.dumps(data))
        return Event(event_id, stack, kind, who, at, dict(data))

    def _append_event(self, stack: str, kind: str, who: str, at: float, data_text: str) -> int:
        """Create the next numbered event object; its id."""
        for _ in range(_RETRIES):
            last = max(self._events, default=0)
            later = self._list(self._key("events/"), self._event_key(last) if last else "")
            event_id = (_number(later[-1]) if later else last) + 1
            doc = {"format": SCHEMA_VERSION, "id": event_id, "stack": stack, "kind": kind, "who": who,
                   "at": at, "data": data_text}
            if self._put(self._event_key(event_id), _body(doc), create=True):
                self._events[event_id] = doc
                return event_id
        raise StateError(f"could not append to the audit log in {self.where.shown}: others kept writing",
                         hint="try again")

    def _event_docs(self) -> list[dict[str, Any]]:
        """Every event as stored, oldest first; each object is read once per store
        (events never change)."""
        keys = self._list(self._key("events/"))
        missing = [k for k in keys if _number(k) not in self._events]
        for key, got in zip(missing, self._get_many(missing)):
            if got is None:
                raise Corrupt(f"audit event {key} vanished while read")
            doc = _json(got[0])
            self._events[int(doc["id"])] = doc
        return [self._events[_number(k)] for k in keys]

    def events(self, stack: str | None = None, kinds: tuple[str, ...] = (),
               stacks: Collection[str] | None = None) -> list[Event]:
        names = set(stacks) if stacks is not None else None if stack is None else {stack}
        with self._guard():
            return [Event(int(d["id"]), d["stack"], d["kind"], d["who"], float(d["at"]), self.values.loads(d["data"]))
                    for d in self._event_docs()
                    if (names is None or d["stack"] in names) and (not kinds or d["kind"] in kinds)]

    # --- moving stacks between stores -------------------------------------------------------

    def export_stack(self, stack: str) -> StackRecord:
        with self._guard():
            state = self._load(stack)
            keys = self._checkpoint_keys(stack)
            checkpoints = [list(self._checkpoint_parts(k)) for k in keys]
            docs = [d for d in self._event_docs() if d["stack"] == stack]
        return StackRecord(stack, state.lineage, state.serial, state.created_at, state.updated_at,
                           state.outputs, [list(r) for r in state.resources.values()],
                           [list(p) for p in state.pending.values()], checkpoints,
                           [[d["kind"], d["who"], float(d["at"]), d["data"]] for d in docs],
                           [int(d["id"]) for d in docs])

    def import_stack(self, record: StackRecord) -> None:
        self.import_stacks([record])

    def import_stacks(self, records: Sequence[StackRecord]) -> None:
        """Checkpoints and events first, the heads last: until its head exists, a stack
        does not. S3 has no transaction across objects: if the import fails, what it
        wrote is deleted again before the error is raised."""
        names = [r.name for r in records]
        self._refuse_write(f"create {stacks_named(names)}")
        with self._guard():
            existing = [n for n in names if self._get(self._stack_key(n, "head.json")) is not None]
            if existing:
                raise already_there(existing, self.where.shown)
            written: list[str] = []
            try:
                self._write_stacks(records, written)
            except BaseException:
                self._undo(written)
                raise

    def _undo(self, written: list[str]) -> None:
        """Delete the objects an import created (and forget the events among them)."""
        self._delete_keys(written)
        events = self._key("events/")
        for key in written:
            if key.startswith(events):
                self._events.pop(_number(key), None)

    def _write_stacks(self, records: Sequence[StackRecord], written: list[str]) -> None:
        """Write ``records``, noting in ``written`` each key as it is created."""
        for record in records:
            self._delete_keys(self._list(self._stack_key(record.name, "")))  # an earlier import's leftovers
            for header, changes, snapshot in record.checkpoints:
                key = self._checkpoint_key(record.name, int(header[0]))
                written.append(key)
                self._put(key, _checkpoint_body(header, changes, snapshot))
        for name, (kind, who, at, data) in in_logged_order(records):
            event_id = self._append_event(name, kind, who, at, data)
            written.append(self._event_key(event_id))
        for record in records:
            head = self._stack_key(record.name, "head.json")
            state = _Stack(record.lineage, record.serial, record.created_at, record.updated_at, record.outputs,
                           {r[0]: list(r) for r in record.resources}, {p[0]: list(p) for p in record.pending},
                           [list(c[0]) for c in record.checkpoints])
            if not self._put(head, _body(state.head()), create=True):
                raise StateError(f"stack {record.name!r} was created in {self.where.shown} during the import",
                                 hint="remove one of them and migrate again")
            written.append(head)

    def close(self) -> None:
        for lease in self._leases.values():
            lease.stop()
        self._leases.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class S3StackWriter:
    """``StackWriter``: each method (or each ``batch()``) is one journal object.

    Commits may run on a worker thread (``slow_commits``) while the engine's thread
    adds changes (``add_change``): ``Operation`` takes both."""

    slow_commits = True

    def __init__(self, store: S3StateStore, stack: str, kind: str, who: str, state: _Stack) -> None:
        self._store = store
        self._stack = stack
        self._state = state
        self._work: _Stack | None = None
        self._ops: list[Any] | None = None
        self._op = Operation(stack, kind, who)
        self._opened = False
        """A write stored the open operation (``open_operation.py``): ``finish`` closes it."""

    def _noting(self, *changes: Change | None) -> list[Any]:
        """The journal entry that stores the open operation with ``changes``, in the
        commit of the write that made them."""
        self._opened = True
        return ["operation", note_row(self._op, changes)]

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every write inside the block is one journal object."""
        if self._ops is not None:
            yield
            return
        self._store._refuse_write(f"write the state of stack {self._stack!r}")
        self._ops, self._work = [], self._state.copy()
        try:
            yield
            ops = self._ops
        finally:
            self._ops, self._work = None, None
        if ops:
            with self._store._guard():
                self._state = self._store._commit(self._stack, self._state, ops)

    def _write(self, *ops: list[Any]) -> None:
        """Apply ``ops`` to the batch's view, and commit unless a batch is open."""
        with self.batch():
            assert self._work is not None and self._ops is not None
            for op in ops:
                apply_op(self._work, op)
            self._ops.extend(ops)

    def _view(self) -> _Stack:
        return self._work if self._work is not None else self._state

    def record_pending(self, op: PendingOperation) -> None:
        self._op.check_open()
        values = self._store.values
        self._write(["pending", [op.token, op.urn, op.type, op.op, values.dumps(op.inputs),
                                 op.resource_id, op.parent, dumps(op.deps), op.started_at]], self._noting())

    def record_resource(self, resource: ResourceState, change: Change | None, clears: str | None = None) -> None:
        """Insert or replace a resource; clear pending op ``clears`` in the same commit."""
        self._op.check_open()
        row = list(resource_params(self._stack, resource, self._store.values)[1:])
        if not all(isinstance(row[i], str) for i in (0, 1, 2)):
            raise StateError(f"resource {resource.urn} cannot be recorded: its urn, type and id must be text")
        self._write(["resource", row], *([["done", clears]] if clears is not None else []), self._noting(change))
        self._op.note(change)

    def remove_resource(self, urn: str, change: Change | None, clears: str | None = None,
                        resource_id: str | None = None) -> None:
        """Forget a resource; with ``resource_id``, only if the row still has that id."""
        self._op.check_open()
        self._write(["forget", urn, resource_id], *([["done", clears]] if clears is not None else []),
                    self._noting(change))
        self._op.note(change)

    def clear_pending(self, token: str, change: Change | None = None) -> None:
        self._op.check_open()
        self._write(["done", token], self._noting(change))
        self._op.note(change)

    def rename_resource(self, old_urn: str, new_urn: str) -> None:
        self._op.check_open()
        if old_urn == new_urn:
            return
        if new_urn in self._view().resources:
            raise StateError(f"cannot move {old_urn} to {new_urn}: a resource is already recorded there",
                             hint="remove one of the aliases")
        self._write(["rename", old_urn, new_urn], self._noting())

    def add_change(self, change: Change) -> None:
        """Stored with the open operation by the next write (no commit of its own)."""
        self._op.check_open()
        self._op.note_unsaved(change)

    def finish(self, result: str, outputs: dict[str, Any] | None, message: str = "") -> Checkpoint | None:
        """Replace the outputs if given; write a checkpoint if anything changed or failed;
        fold the journal into the head."""
        self._op.check_open()
        text = None if outputs is None else self._store.values.dumps(outputs)
        if text is not None and text != self._state.outputs:
            self._write(["outputs", text])
        self._op.finished = True
        store = self._store
        checkpoint: Checkpoint | None = None
        with store._guard():
            if self._op.changes or result != "succeeded":
                store._refuse_write(f"record a checkpoint of stack {self._stack!r}")
                header: Row = [0, self._op.kind, self._op.who, self._op.started_at, time.time(), result,
                               dumps(self._op.counts), message, self._state.serial]
                changes = self._op.changes_json()
                header = store._write_checkpoint(self._stack, self._state, header, changes)
                self._state = replace(self._state.copy(), history=[*self._state.history, header])
                checkpoint = checkpoint_row(header)
            if self._opened:  # the new head closes it (a killed compaction: see _close_leftover)
                self._state = replace(self._state.copy(), operation=None)
            if not store.read_only:
                store._compact(self._stack, self._state)
        return checkpoint


class _Lease(threading.Thread):
    """Renews a held lock every ``every`` seconds until stopped or no longer ours."""

    def __init__(self, renew: Callable[[str], str | None], etag: str, every: float) -> None:
        super().__init__(daemon=True, name="s3-state-lease")
        self._renew = renew
        self._etag = etag
        self._every = every
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._every):
            try:
                etag = self._renew(self._etag)
            except StateError:
                continue  # a network hiccup: the next renewal may succeed before the lease ends
            if etag is None:
                return
            self._etag = etag

    def stop(self) -> None:
        self._stopped.set()


def _client(where: S3Location) -> Any:
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=_READERS * 2)
    region = where.region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
    return _session(where).client("s3", endpoint_url=where.endpoint, region_name=region, config=config)


def _session(where: S3Location) -> Any:
    """The usual AWS settings, but an emulator's endpoint (on the loopback interface,
    given in the URL or by ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``) with no
    credentials in the environment or the AWS config files gets the emulator's dummy
    ones, as the AWS provider gives them (``stackwright.emulator_endpoints``)."""
    import boto3
    import botocore.session

    endpoint = where.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not is_emulator(endpoint):
        return boto3.session.Session()
    core = botocore.session.Session()
    # An emulator has no instance or container role: asking the metadata services
    # would only wait for their timeouts.
    resolver = core.get_component("credential_provider")
    for provider in ("container-role", "iam-role"):
        resolver.remove(provider)
    session = boto3.session.Session(botocore_session=core)
    if session.get_credentials() is not None:
        return session
    return boto3.session.Session(aws_access_key_id=EMULATOR_CREDENTIALS["access_key_id"],
                                 aws_secret_access_key=EMULATOR_CREDENTIALS["secret_access_key"])


def _code(exc: Any) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", ""))


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        raise Corrupt("a stored object is not JSON") from None
    if not isinstance(doc, dict):
        raise Corrupt("a stored object is not a JSON object")
    return doc


def _body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _checkpoint_body(header: Row, changes: str, snapshot: str) -> bytes:
    """Three lines of JSON (none holds a raw newline), compressed like SQL snapshots."""
    return zlib.compress(f"{dumps(header)}\n{changes}\n{snapshot}".encode(), 6)


def _number(key: str) -> int:
    return int(key.rsplit("/", 1)[-1].split(".", 1)[0])


if TYPE_CHECKING:
    def _implements(s: S3StateStore, w: S3StackWriter) -> tuple[StateStore, StackWriter]:
        """mypy proof that both classes satisfy the protocols in ``store.py``."""
        return s, w
