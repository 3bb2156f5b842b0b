"""Shared machinery of the AWS resource providers: clients, error classes, tags, names.
What AWS resource providers share beyond that lives in ``aws/common``; what any
provider may use (waits, idempotency tokens) in ``providers/common``.

Every AWS call goes through boto3. botocore's own retries are off so that the engine
owns retrying (with backoff and jitter) and can show and count it; errors are
classified here as retryable (throttling, transient faults) or permanent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, Final, TypeVar

from stackwright.errors import InputError, NotFoundError, ProviderError
from stackwright.providers.aws.read_batch import MISS, ReadBatch
from stackwright.providers.protocol import OperationContext, ResourceProvider

T = TypeVar("T")

URN_TAG = "stackwright:urn"
"""Tag put on every taggable object so an interrupted create can be found again."""

LINEAGE_TAG = "stackwright:lineage"
"""Put beside the URN tag by every create: the lineage of the stack's state that made the
object. Two states of one stack (two checkouts, a lost ``.stackwright/`` made again)
share URNs but never a lineage, so neither takes the other's objects for its own."""

RESERVED_TAGS = frozenset({URN_TAG, LINEAGE_TAG})
"""Stackwright's own tags: never a user's, never reported as drift, never removed."""

RETRYABLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "ServiceUnavailable",
    "ServiceUnavailableException", "InternalError", "InternalFailure",
    "InternalServerError", "PriorRequestNotComplete", "OperationAbortedException",
    "ConcurrentModificationException", "ResourceInUseException",
    "DependencyViolation", "IncorrectState", "InvalidParameterException.Busy",
})
"""Codes worth retrying. ``DependencyViolation`` and friends appear while AWS is still
detaching something a moment ago deleted; they clear on their own."""


class AwsClients:
    """boto3 clients for one provider configuration, created once and shared.

    boto3 clients are thread-safe. One boto3 session (one botocore session) serves the
    whole provider: it is made once, under a lock, and each service's client is then
    built under that service's own lock, so different services are built side by side
    while no service is ever built twice. The sessions of every provider in the process
    share one botocore data loader, so service models, endpoint rules and endpoint data
    are read and parsed once per process, not once per client.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.region: str = str(config.get("region") or "us-east-1")
        self.endpoint_url: str | None = config.get("endpoint_url")
        self._profile = config.get("profile")
        self._static = config.get("credentials")
        self._clients: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._session: Any = None
        self._session_lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._service_lock(service):
                client = self._clients.get(service)
                if client is None:
                    client = self._clients[service] = self._make(service)
        return client

    def built(self) -> list[str]:
        """The services whose clients exist so far (each is built on its first use)."""
        return sorted(self._clients)

    def _service_lock(self, service: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(service, threading.Lock())

    def _make(self, service: str) -> Any:
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "region_name": self.region,
            # total_max_attempts counts the first try; botocore's max_attempts counts
            # retries only (1 would mean one hidden retry of every throttled call).
            "config": Config(retries={"total_max_attempts": 1, "mode": "standard"},
                             connect_timeout=10, read_timeout=60, max_pool_connections=64),
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if isinstance(self._static, Mapping):
            kwargs["aws_access_key_id"] = self._static.get("access_key_id")
            kwargs["aws_secret_access_key"] = self._static.get("secret_access_key")
        return self._shared_session().client(service, **kwargs)

    def _shared_session(self) -> Any:
        session = self._session
        if session is None:
            with self._session_lock:
                if self._session is None:
                    self._session = self._new_session()
                session = self._session
        return session

    def _new_session(self) -> Any:
        import boto3
        import botocore.session

        core = botocore.session.Session(session_vars=_NO_PROFILE if self._ignores_profile() else None)
        session = boto3.session.Session(botocore_session=core, profile_name=self._profile)
        # After boto3 set the session up (it adds its resource models to the session's
        # own loader): clients are built from the loader shared by every session.
        core.register_component("data_loader", _shared_loader(core.get_config_variable("data_path")))
        if not isinstance(self._static, Mapping):
            # Resolve the credential chain once, here, rather than in several threads
            # building their first clients at once (a profile may prompt or call STS).
            session.get_credentials()
        return session

    def _ignores_profile(self) -> bool:
        """Credentials given in the config (an emulator's dummy ones) and no profile
        named there: ``AWS_PROFILE`` or ``AWS_DEFAULT_PROFILE`` in the environment has
        nothing to say, and a profile this machine lacks must not fail every call."""
        return isinstance(self._static, Mapping) and not self._profile


_NO_PROFILE: Final = {"profile": (None, None, None, None)}
"""botocore's ``session_vars`` entry for ``profile``: read from no config key, no
environment variable, no default."""

_LOADERS: dict[Any, Any] = {}
_LOADERS_LOCK = threading.Lock()


def _shared_loader(data_path: str | None) -> Any:
    """The process's botocore data loader for ``data_path``. It caches what it loads
    (service models, endpoint rule sets, endpoint data), which botocore treats as
    read-only, so one loader serves every session."""
    with _LOADERS_LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            loader = _LOADERS[data_path] = _serial_loader(data_path)
        return loader


def _serial_loader(data_path: str | None) -> Any:
    """What botocore's ``create_loader(data_path)`` makes, but loading one file at a
    time: threads building their first clients at once then parse a file they all need
    (``endpoints.json``) once, not each its own copy. Parsing holds the GIL anyway, so
    this costs no parallelism."""
    import os

    from botocore.loaders import Loader

    lock = threading.RLock()

    def one_at_a_time(load: Callable[..., Any]) -> Callable[..., Any]:
        def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return load(self, *args, **kwargs)
        return locked

    # Loader's cached loads (``load_data`` goes through ``load_data_with_path``).
    serial = type("SerialLoader", (Loader,), {name: one_at_a_time(getattr(Loader, name)) for name in (
        "list_available_services", "determine_latest_version", "list_api_versions",
        "load_service_model", "load_data_with_path")})
    if data_path is None:
        return serial()
    return serial(extra_search_paths=[
        os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)])


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(exc: BaseException) -> bool:
    code = error_code(exc)
    return "NotFound" in code or "NoSuch" in code or code in {
        "404", "ResourceNotFoundException", "InvalidVpcID.NotFound", "NotFoundException",
        "RepositoryNotFoundException", "ValidationError" if "does not exist" in str(exc) else "-",
    }


def classify(exc: BaseException, action: str) -> ProviderError:
    """Turn a botocore exception into a retryable or permanent ProviderError; a
    not-found answer into a NotFoundError."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return ProviderError.transient(f"{action}: {exc}")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = exc.response.get("Error", {}).get("Message", str(exc))
        retryable = code in RETRYABLE_CODES or (isinstance(status, int) and status >= 500)
        if not retryable and is_not_found(exc):
            return NotFoundError(f"{action}: {code}: {message}")
        return ProviderError(f"{action}: {code}: {message}", retryable=retryable)
    return ProviderError(f"{action}: {type(exc).__name__}: {exc}")


def call(action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one AWS call, raising classified ProviderErrors."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none is lost
        raise classify(exc, action) from exc


def call_or_none(action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Like ``call`` but a not-found answer is ``None`` (the object is gone)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        if is_not_found(exc):
            return None
        raise classify(exc, action) from exc


def is_reserved_tag(key: str) -> bool:
    """Stackwright's own tags and AWS's (``aws:``): not the user's to set or remove."""
    return key in RESERVED_TAGS or key.startswith("aws:")


def own_tags(ctx: OperationContext) -> dict[str, str]:
    """The tags that mark an object as made for ``ctx.urn`` by this stack's state."""
    return {URN_TAG: ctx.urn, LINEAGE_TAG: ctx.lineage} if ctx.lineage else {URN_TAG: ctx.urn}


def is_ours(tags: Mapping[str, str], ctx: OperationContext) -> bool:
    """Whether an object found by name or by tag is one this state made for ``ctx.urn``
    (an earlier attempt whose answer was lost, or a create a crash interrupted), to be
    adopted rather than refused. The one rule every AWS provider that adopts follows."""
    return _not_ours(tags, ctx) is None


def claim(kind: str, name: str, tags: Mapping[str, str], ctx: OperationContext) -> None:
    """Refuse to take over the existing object ``name`` (``tags``: all of its tags)
    unless it is this state's own, saying whose it is."""
    why = _not_ours(tags, ctx)
    if why == "lineage":
        raise ProviderError(
            f"{kind} {name!r} already exists, managed by another state of this stack "
            f"(lineage {tags.get(LINEAGE_TAG)}; this state's is {ctx.lineage})",
            hint="another checkout or state backend manages it: apply from there, or give it another name "
                 "here; to manage it from this state instead, `stackwright import` it and remove it from "
                 "the other state (`stackwright state rm`)")
    if why == "unmarked":
        raise ProviderError(
            f"{kind} {name!r} already exists: made for {ctx.urn} before objects carried their state's "
            "lineage, and this state has no record of making it",
            hint="if this state should manage it, `stackwright import` it; if another state of this stack "
                 "manages it, apply from there, or give it another name here")
    if why is not None:
        raise ProviderError(f"{kind} {name!r} already exists and is not managed by {ctx.urn}; "
                            "adopt it with `stackwright import` or choose another name")


def _not_ours(tags: Mapping[str, str], ctx: OperationContext) -> str | None:
    """None for this state's own object, else why not: ``urn``, ``lineage`` or
    ``unmarked``. One made before lineage tags carries the URN tag alone ("unmarked"): it
    is taken as ours only while recovering a create this state recorded as pending (the
    crash that left it), or where there is no lineage to compare (a call made outside an
    apply)."""
    if tags.get(URN_TAG) != ctx.urn:
        return "urn"
    lineage = tags.get(LINEAGE_TAG)
    if lineage is None:
        return None if ctx.recovering or not ctx.lineage else "unmarked"
    return None if lineage == ctx.lineage else "lineage"


def tag_list(tags: Mapping[str, str], owner: OperationContext | None = None, key: str = "Key",
             value: str = "Value") -> list[dict[str, str]]:
    """AWS's ``[{"Key": k, "Value": v}]`` form, with the tags that mark an object as
    ``owner``'s (``own_tags``) when given."""
    merged = dict(tags)
    if owner is not None:
        merged.update(own_tags(owner))
    return [{key: k, value: v} for k, v in sorted(merged.items())]


def tag_dict(tags: list[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """User tags from AWS's list form, without Stackwright's own and AWS's reserved ones."""
    return {t[key]: t[value] for t in tags or [] if not is_reserved_tag(t[key])}


def all_tags(tags: list[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """Every tag from AWS's list form, Stackwright's own included (to recognise ours)."""
    return {t[key]: t[value] for t in tags or []}


def user_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """User tags from a dict of tags, without Stackwright's own and AWS's reserved ones."""
    return {k: v for k, v in (tags or {}).items() if not is_reserved_tag(k)}


def tag_changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """Tag keys to remove and tags to set to turn ``old`` into ``new``.

    ``old`` is what was recorded or, after a refresh, what AWS has; tags nobody
    changed are not sent, so the URN tag and tags of other tools are never touched.
    """
    gone = sorted(set(old) - set(new))
    return gone, {k: v for k, v in new.items() if old.get(k) != v}


def check_tags(tags: Any, prop: str = "tags") -> None:
    """User tags are strings and never use the keys Stackwright or AWS reserve."""
    if not isinstance(tags, Mapping):
        raise InputError(f"{prop} must map strings to strings", prop=prop)
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InputError(f"{prop} must map strings to strings", prop=prop)
        if is_reserved_tag(key):
            raise InputError(f"tag key {key!r} is reserved", prop=prop,
                             hint=f"Stackwright sets {' and '.join(sorted(RESERVED_TAGS))} itself; "
                                  "'aws:' keys belong to AWS")


# --- names --------------------------------------------------------------------------


def partition(region: str) -> str:
    """The ARN partition of a region; ARNs built by hand must carry the right one."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class AwsResource(ResourceProvider):
    """Base for AWS resource providers; ``clients("s3")`` gives a boto3 client.

    A type whose API describes many objects in one call sets ``batch_size`` and
    implements ``describe_many``: a refresh then reads a chunk of objects per call
    (``read_batch``), and its ``read`` gets each answer from ``batched``.
    """

    service: str = ""
    batch_size: ClassVar[int] = 0
    """How many keys one ``describe_many`` call takes; 0 reads one object per call."""

    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients
        self._batch = ReadBatch(self.describe_many, self.batch_key, self.batch_size) if self.batch_size else None

    @property
    def client(self) -> Any:
        return self.clients(self.service)

    def batch_reads(self, ids: Sequence[str]) -> AbstractContextManager[None]:
        return self._batch.reads(ids) if self._batch is not None else nullcontext()

    def describe_many(self, keys: list[str]) -> Mapping[str, Any]:
        """``{key: raw answer}`` for the keys of one chunk, in as few calls as the API
        allows; a key that is gone is left out. Raises classified ProviderErrors."""
        raise NotImplementedError

    def batch_key(self, id: str) -> str:
        """What ``describe_many`` asks for to read ``id``; must not raise."""
        return id

    def batched(self, id: str) -> Any:
        """The raw answer for ``id``'s key (``None``: gone) when a refresh announced
        it, else ``MISS`` (read it on its own)."""
        return self._batch.take(id) if self._batch is not None else MISS
