"""The resource providers of ``k8s``: every Kubernetes object, and provider instances.

One handler serves every kind (``k8s:apps/v1:Deployment``, ``k8s:example.com/v1:Widget``...):
objects are applied with server-side apply under the field manager ``stackwright``,
waited for until healthy, and deleted with foreground propagation. The id of an
object is ``namespace/name`` (``name`` when cluster-scoped); its type token says the
apiVersion and kind.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from stackwright.errors import CreatedButFailed, InputError, ProviderError
from stackwright.model.resource import urn_parts
from stackwright.model.values import MASK, Secret, reveal
from stackwright.providers.k8s import health as checks
from stackwright.providers.k8s import manifests as m
from stackwright.providers.k8s.client import Conflict, Connection, Settings, UnknownKind, connect
from stackwright.providers.protocol import (
    NO_CONTAINMENT,
    Containment,
    Created,
    DiffResult,
    DryRunBlocked,
    OperationContext,
    ReadResult,
    ResourceProvider,
)

DEFAULT_TIMEOUT = 600.0
"""Seconds to wait for an object to become healthy, unless its annotation says."""
DELETE_TIMEOUT = 300.0
POLL_MAX = 2.0
SECRET_FIELDS = ("data", "stringData")


class ObjectProvider(ResourceProvider):
    """Any Kubernetes object declared by a manifest."""

    type_token = "k8s:*"
    provider_input = "provider"
    secret_outputs = frozenset[str]()
    """``applied``, what the server stored of the manifest's fields (for drift), holds a
    Secret's ``data`` and ``stringData`` values as secrets, and its apiVersion, kind and
    metadata plain: those name objects, and a secret's text is masked in every message.
    In other kinds a value made from a secret appears verbatim, and the engine marks
    every output string that contains a secret's text. Keeping the others plain keeps
    previews of thousands of objects from decrypting each one, and error messages from
    masking words like ``Role``."""
    computed_on_update = frozenset({"applied"})
    explains_updates = True
    explains_creates = True
    checks_before_apply = True

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        from stackwright.providers.k8s import Object

        type(self).resource_class = Object

    def connection(self, ctx: OperationContext) -> Connection:
        return connect(Settings.of(self.settings, ctx.provider_config))

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        manifest = inputs.get("manifest")
        if not isinstance(manifest, Mapping):
            raise InputError("manifest must be a mapping (a Kubernetes object)", prop="manifest")
        try:
            m.identity(manifest)
        except m.ManifestError as exc:
            raise InputError(exc.message, prop="manifest") from None
        force = inputs.get("force", False)
        if not isinstance(force, bool):
            raise InputError("force must be True or False", prop="force")
        return {"manifest": dict(manifest), "provider": inputs.get("provider"), "force": force}

    def diff(self, old_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any],
             new_inputs: Mapping[str, Any]) -> DiffResult:
        """A new name or kind is a new object (made before the old one goes); a field
        the server will not change in place replaces it, deleting first since the
        name stays. A new provider instance (a new credential) is an update."""
        result = super().diff(old_inputs, old_outputs, new_inputs)
        if "manifest" not in result.changed:
            return DiffResult(changed=result.changed)
        old, new = old_inputs.get("manifest") or {}, new_inputs.get("manifest") or {}
        try:
            old_id, new_id = m.identity(old), m.identity(new)
        except m.ManifestError:
            return DiffResult(changed=result.changed)
        if (old_id.group, old_id.kind, old_id.name, old_id.namespace) != \
                (new_id.group, new_id.kind, new_id.name, new_id.namespace):
            return DiffResult(changed=result.changed, replaces=("manifest",))
        if m.immutable_changes(old, new):
            return DiffResult(changed=result.changed, replaces=("manifest",), delete_before_replace=True)
        return DiffResult(changed=result.changed)

    # --- create / update --------------------------------------------------------------

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        conn = self.connection(ctx)
        ident = self._identity(conn, inputs["manifest"])
        existing = conn.get(ident)
        if existing is not None and m.owner_urn(existing) != ctx.urn:
            raise _not_ours(ident, ctx)
        try:
            return Created(ident.id(), self._apply(ctx, conn, ident, inputs))
        except _Unhealthy as exc:
            raise CreatedButFailed(exc.message, ident.id(), _outputs(ident, inputs["manifest"], exc.live),
                                   hint=exc.hint) from exc

    def update(self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
               old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Apply the new manifest. An update that puts back fields changed outside
        Stackwright takes them back from the manager that changed them (which owns them
        since): the declared value wins for what the plan restores, as Argo CD and Flux
        have it (``_taking_back``). A conflict on any other field fails, unless ``force``."""
        conn = self.connection(ctx)
        return self._apply(ctx, conn, self._identity(conn, new_inputs["manifest"]), new_inputs,
                           _Restoring(old_inputs.get("manifest"), reveal(old_outputs.get("applied"))))

    def _apply(self, ctx: OperationContext, conn: Connection, ident: m.Identity,
               inputs: Mapping[str, Any], restoring: _Restoring | None = None) -> dict[str, Any]:
        manifest = inputs["manifest"]
        ctx.log(f"server-side apply of {ident}")
        body = m.with_ownership(manifest, ctx.urn, ident.namespace)
        try:
            live = conn.apply(ident, body, force=bool(inputs.get("force")))
        except Conflict as exc:
            taken = _taking_back(exc, ident, conn.get(ident) or {}, restoring)
            ctx.log(f"{ident}: {taken}")
            live = conn.apply(ident, body, force=True)
        live = self._await(ctx, conn, ident, manifest, live)
        return _outputs(ident, manifest, live)

    def _identity(self, conn: Connection, manifest: Mapping[str, Any]) -> m.Identity:
        ident = m.identity(manifest)
        if ident.namespace is None and conn.namespaced(ident):
            return m.identity(manifest, conn.namespace)
        return ident

    def _await(self, ctx: OperationContext, conn: Connection, ident: m.Identity,
               manifest: Mapping[str, Any], live: dict[str, Any]) -> dict[str, Any]:
        """Wait until the object is healthy, saying what it waits for; a permanent
        error when it is degraded or the timeout passes."""
        notes = m.annotations_of(manifest)
        if str(notes.get(m.SKIP_AWAIT_ANNOTATION, "")).lower() == "true":
            return live
        timeout = _timeout(notes, min(DEFAULT_TIMEOUT, ctx.timeout))
        deadline, delay, said = time.monotonic() + timeout, 0.1, ""
        while True:
            state = self._health(conn, ident, live)
            if state.status is checks.Status.HEALTHY:
                return live
            if state.status is checks.Status.DEGRADED:
                raise _Unhealthy(f"{ident} is unhealthy: {state.reason}", live)
            if state.reason != said:
                ctx.log(f"waiting for {ident}: {state.reason}")
                said = state.reason
            if time.monotonic() > deadline:
                raise _Unhealthy(
                    f"timed out after {timeout:g}s waiting for {ident}: {state.reason} (set the annotation "
                    f"{m.TIMEOUT_ANNOTATION} to wait longer, or {m.SKIP_AWAIT_ANNOTATION}: \"true\" not to wait)",
                    live)
            time.sleep(delay)
            delay = min(POLL_MAX, delay * 2)
            live = conn.get(ident) or live

    def _health(self, conn: Connection, ident: m.Identity, live: Mapping[str, Any]) -> checks.Health:
        if ident.kind == "Service" and (live.get("spec") or {}).get("selector"):
            slices = conn.list("discovery.k8s.io/v1", "EndpointSlice", ident.namespace,
                               {"kubernetes.io/service-name": ident.name})
            return checks.service_endpoints(live, slices)
        return checks.health(live)

    # --- read -------------------------------------------------------------------------

    def read(self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
             outputs: Mapping[str, Any]) -> ReadResult | None:
        """By id: the object, with the managed fields that changed outside Stackwright
        (refresh) or, for import, every field but status and server metadata. Without
        id: the object an interrupted create of this resource made, if any."""
        conn = self.connection(ctx)
        manifest = inputs.get("manifest")
        try:
            ident = self._read_identity(conn, ctx, id, manifest)
            live = conn.get(ident)
        except UnknownKind:
            return None  # no object of a kind the cluster does not serve (its CRD deleted)
        if live is None:
            return None
        if id is None and m.owner_urn(live) != ctx.urn:
            return None
        if not isinstance(manifest, Mapping):
            found = m.importable(live)
            return ReadResult(ident.id(), {"manifest": _hide_secrets(ident, found), "provider": None, "force": False},
                              _outputs(ident, found, live), owner=m.owner_urn(live))
        current = m.project(_view(ident, live), manifest)
        applied = reveal(outputs.get("applied"))
        declared = m.drifted(manifest, applied if isinstance(applied, Mapping) else manifest, current)
        return ReadResult(ident.id(), {**inputs, "manifest": _hide_secrets(ident, declared)},
                          {**_outputs(ident, manifest, live),
                           "applied": _secret_values(ident, applied if applied is not None else current)})

    def _read_identity(self, conn: Connection, ctx: OperationContext, id: str | None,
                       manifest: Any) -> m.Identity:
        if isinstance(manifest, Mapping) and id is None:
            return self._identity(conn, manifest)
        api_version, kind = m.parse_token(urn_parts(ctx.urn)[2])
        namespace, name = m.split_id(id or "")
        ident = m.Identity(api_version, kind, name, namespace)
        if namespace is None and conn.namespaced(ident):  # `import` of NAME: the id is NAMESPACE/NAME
            return m.Identity(api_version, kind, name, conn.namespace)
        return ident

    # --- import -----------------------------------------------------------------------

    adopts = ("takes over the fields the printed code declares from their field managers, with a server-side "
              "apply of the values read (force): no value changes")

    def adopt(self, ctx: OperationContext, id: str, inputs: Mapping[str, Any]) -> list[str]:
        """`import`: a server-side apply, with force, of exactly the manifest read, so
        that Stackwright's field manager owns the fields the printed code declares and a
        change the program makes to one later applies without a conflict. Our label and
        annotation go with it where the object has them (an object Stackwright applied
        before), so that nothing is removed. A dry run first: if the apply would change
        any value, nothing is applied and the import fails."""
        manifest = inputs.get("manifest")
        if not isinstance(manifest, Mapping):
            return []
        conn = self.connection(ctx)
        ident = self._read_identity(conn, ctx, id, None)
        live = conn.get(ident)
        if live is None:
            raise ProviderError(f"{ident} is gone: it was deleted since it was read")
        body = _adoption(manifest, live)
        after = conn.apply(ident, body, force=True, dry_run=True)
        changed = list(m.changes(m.importable(live), m.importable(after)))
        if changed:
            if ident.kind == "Secret":
                changed = [_masked_line(line) for line in changed]
            raise ProviderError(f"taking over the fields of {ident} would change it ({'; '.join(changed[:3])}); "
                                "nothing was changed", hint="import it again: the object may be changing right now")
        done = conn.apply(ident, body, force=True)
        # Applying a value a field has already shares the field with its managers: each
        # gives up what we now own, as `kubectl` and Flux hand fields over to an applier.
        entries = _handed_over(done)
        if entries is not None:
            done = conn.set_managed_fields(ident, str((done.get("metadata") or {}).get("resourceVersion", "")),
                                           entries)
        owners = _managers_losing(live, done)
        whose = f"took over the fields the code declares from {', '.join(owners)}" if owners else \
            "Stackwright's field manager owns the fields the code declares (no other manager held them)"
        return [f"{whose} (a server-side apply of the values read: no value changed), so that `up` changes "
                "them as it changes those of an object it created"]

    # --- delete -----------------------------------------------------------------------

    def delete(self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
               outputs: Mapping[str, Any]) -> None:
        """Foreground deletion, waited for: the object's own dependents go first, and
        the step ends when the object is gone (its finalizers ran)."""
        conn = self.connection(ctx)
        manifest = inputs.get("manifest")
        namespace, name = m.split_id(id)
        api_version, kind = _id_parts(manifest) if isinstance(manifest, Mapping) \
            else m.parse_token(urn_parts(ctx.urn)[2])
        ident = m.Identity(api_version, kind, name, namespace)
        try:
            if not conn.delete(ident):
                return
        except UnknownKind:
            return  # the kind's CRD is gone, and every object of the kind with it
        deadline, delay = time.monotonic() + min(DELETE_TIMEOUT, ctx.timeout), 0.1
        while conn.get(ident) is not None:
            if time.monotonic() > deadline:
                raise ProviderError(f"timed out waiting for {ident} to be deleted (finalizers still running?)")
            ctx.log(f"waiting for {ident} to be deleted")
            time.sleep(delay)
            delay = min(POLL_MAX, delay * 2)

    # --- preview ----------------------------------------------------------------------

    def explain_update(self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
                       new_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any] | None = None) -> list[str]:
        """What a server-side dry run of the apply would change in the live object,
        field by field (managed fields only); the diff against recorded state when
        the cluster cannot be reached. Both manifests' fields are compared, so a field the
        new one drops (which the apply removes) shows, and a Secret's ``stringData`` is
        compared with the live ``data`` it became. Fields the apply takes back from
        another manager (drift, see ``update``) are named with the manager."""
        manifest = new_inputs["manifest"]
        taken: list[str] = []
        try:
            conn = self.connection(ctx)
            ident = self._identity(conn, manifest)
            live = conn.get(ident) or {}
            body = m.with_ownership(manifest, ctx.urn, ident.namespace)
            try:
                after = conn.apply(ident, body, force=bool(new_inputs.get("force")), dry_run=True)
            except Conflict as exc:
                restoring = _Restoring(old_inputs.get("manifest"), reveal((old_outputs or {}).get("applied")))
                taken.append(_taking_back(exc, ident, live, restoring))
                after = conn.apply(ident, body, force=True, dry_run=True)
        except ProviderError as exc:
            return _unchecked(exc, "the diff is against recorded state")
        shape = m.union(old_inputs.get("manifest") or {}, manifest)
        lines = list(m.changes(m.project(_view(ident, live), shape), m.project(_view(ident, after), shape)))
        if ident.kind == "Secret":
            lines = [_masked_line(line) for line in lines]
        return [*taken, "server-side dry run:", *lines] if lines else \
            [*taken, "server-side dry run: no change to the live object"]

    def explain_create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[str]:
        """A server-side dry run of the create: what the API server would refuse (an
        invalid name, a field not in the kind's schema, a kind it does not serve)
        fails the preview as it would fail the apply. An object in a namespace that
        does not exist yet, or of a custom kind whose CRD is not there yet, cannot be
        judged: ``DryRunBlocked``. Refused too, as the create would be: an object of
        that name someone else made."""
        manifest = inputs["manifest"]
        try:
            conn = self.connection(ctx)
            ident = self._dry_run_identity(conn, manifest)
            existing = conn.get(ident)
            if existing is not None and m.owner_urn(existing) != ctx.urn:
                raise _not_ours(ident, ctx)
            conn.apply(ident, m.with_ownership(manifest, ctx.urn, ident.namespace),
                       force=bool(inputs.get("force")), dry_run=True)
        except DryRunBlocked:
            raise
        except ProviderError as exc:
            missing = _MISSING_NAMESPACE.search(exc.message)
            if missing and not exc.retryable:
                raise DryRunBlocked(f"no server-side dry run: namespace {missing.group(1)} does not exist "
                                    "on the server yet") from None
            return _unchecked(exc, "the create is not checked before it is applied")
        return ["server-side dry run: accepted"]

    def _dry_run_identity(self, conn: Connection, manifest: Mapping[str, Any]) -> m.Identity:
        """The object's identity; a kind the cluster does not serve blocks the dry run
        when a CRD could bring it (its group has a dot), and is refused otherwise."""
        try:
            conn.kind(str(manifest["apiVersion"]), str(manifest["kind"]))
        except UnknownKind as exc:
            if "." in m.identity(manifest).group:
                raise DryRunBlocked(f"no server-side dry run: {exc.message}") from None
            raise
        return self._identity(conn, manifest)

    def containment(self, type_token: str, id: str | None, inputs: Mapping[str, Any],
                    outputs: Mapping[str, Any]) -> Containment:
        """A Namespace holds the objects in it; a CRD holds the custom resources of its
        kind. Scopes are per provider instance (per cluster)."""
        try:
            api_version, kind = m.parse_token(type_token)
        except m.ManifestError:
            return NO_CONTAINMENT
        cluster = inputs.get("provider") if isinstance(inputs.get("provider"), str) else ""
        manifest = _mapping(inputs.get("manifest"))
        holds: set[str] = set()
        if api_version == "v1" and kind == "Namespace" and id:
            holds.add(f"{cluster}|namespace|{id}")
        elif kind == "CustomResourceDefinition" and api_version.startswith("apiextensions.k8s.io/"):
            spec = _mapping(manifest.get("spec"))
            group, served = spec.get("group"), _mapping(spec.get("names")).get("kind")
            if isinstance(group, str) and isinstance(served, str):
                holds.add(f"{cluster}|kind|{group}|{served}")
        within = {f"{cluster}|kind|{api_version.rpartition('/')[0]}|{kind}"} if "." in api_version else set()
        namespace = _namespace_of(id, manifest, outputs)
        if namespace:
            within.add(f"{cluster}|namespace|{namespace}")
        return Containment(frozenset(holds), frozenset(within))


def _not_ours(ident: m.Identity, ctx: OperationContext) -> ProviderError:
    """A create finds an object of its name that another resource, or no one, made."""
    return ProviderError(f"{ident} already exists and was not created by this resource; adopt it with "
                         f"`stackwright import {ident.token} {ctx.name} {ident.id()}`, or pick another name")


_MISSING_NAMESPACE = re.compile(r'namespaces "([^"]+)" not found')


def _unchecked(exc: ProviderError, instead: str) -> list[str]:
    """A dry run that failed: refused (the apply would fail the same way), or a note
    saying what the preview shows ``instead`` when the cluster could not be asked."""
    if not exc.retryable:
        raise ProviderError(f"server-side dry run refused it: {exc.message}", hint=exc.hint) from None
    what = "cluster not reachable" if "cannot reach the cluster" in exc.message else "no server-side dry run"
    return [f"{what} ({exc.message}); {instead}"]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _namespace_of(id: str | None, manifest: Mapping[str, Any], outputs: Mapping[str, Any]) -> str | None:
    """The namespace of a recorded object (from its id), or of a new one (its manifest,
    else the namespace its old object was given by default)."""
    if id is not None:
        return m.split_id(id)[0]
    declared = _mapping(manifest.get("metadata")).get("namespace")
    if isinstance(declared, str):
        return declared
    recorded = outputs.get("namespace")
    return recorded if isinstance(recorded, str) and declared is None else None


class _Unhealthy(ProviderError):
    """An applied object that did not become healthy: it exists, in the state ``live``."""

    def __init__(self, message: str, live: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.live = live


class InstanceProvider(ResourceProvider):
    """``k8s:index:Provider``: a connection's settings, recorded, not applied anywhere.
    A changed kubeconfig or context is an in-place update of the instance only."""

    type_token = "k8s:index:Provider"
    secret_outputs = frozenset({"kubeconfig"})

    def __init__(self) -> None:
        from stackwright.providers.k8s import Provider

        type(self).resource_class = Provider

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = {k: inputs.get(k) for k in ("kubeconfig", "context", "namespace")}
        for key, value in values.items():
            if value is not None and not isinstance(value, str):
                raise InputError(f"{key} must be a string", prop=key)
        return values

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        return Created(ctx.urn)

    def update(self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
               old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return {}

    def read(self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
             outputs: Mapping[str, Any]) -> ReadResult | None:
        return ReadResult(id or ctx.urn, dict(inputs))

    def delete(self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
               outputs: Mapping[str, Any]) -> None:
        return None


class KubernetesProvider:
    """The ``k8s`` provider: configured from the stack config section ``k8s:``
    (``kubeconfig`` path or text, ``context``, ``namespace``)."""

    name = "k8s"
    version = "0.1.0"
    TOKEN_SHAPE: ClassVar[str] = "k8s:GROUP/VERSION:Kind"

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}
        self.objects = ObjectProvider(self.settings)
        self.instances = InstanceProvider()

    def configure(self, config: Mapping[str, Any]) -> None:
        self.settings.clear()
        self.settings.update(config)

    def resource(self, type_token: str) -> ResourceProvider:
        if type_token == self.instances.type_token:
            return self.instances
        try:
            m.parse_token(type_token)
        except m.ManifestError:
            raise KeyError(type_token) from None
        return self.objects

    def types(self) -> list[str]:
        return [self.instances.type_token, self.TOKEN_SHAPE]


def _adoption(manifest: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest read for `import`, with our label and annotation where the live
    object has them (an apply without them would remove them, were they ours)."""
    body = dict(manifest)
    live_meta = live.get("metadata") or {}
    metadata = dict(body.get("metadata") or {})
    for key, ours in (("labels", m.MANAGED_BY_LABEL), ("annotations", m.URN_ANNOTATION)):
        value = (live_meta.get(key) or {}).get(ours)
        if value is not None:
            metadata[key] = {**(metadata.get(key) or {}), ours: value}
    body["metadata"] = metadata
    return body


def _handed_over(live: Mapping[str, Any]) -> list[Any] | None:
    """The object's managedFields with every other manager's main-resource entry less
    the fields ours owns (entries left with nothing dropped); None when nothing moves."""
    entries = list((live.get("metadata") or {}).get("managedFields") or [])
    ours = next((e.get("fieldsV1") or {} for e in entries
                 if e.get("manager") == m.MANAGER and e.get("operation") == "Apply" and not e.get("subresource")), None)
    if not ours:
        return None
    out, moved = [], False
    for entry in entries:
        if entry.get("manager") == m.MANAGER or entry.get("subresource"):
            out.append(entry)
            continue
        rest = m.without_fields(entry.get("fieldsV1") or {}, ours)
        moved = moved or rest != (entry.get("fieldsV1") or {})
        if rest:
            out.append({**entry, "fieldsV1": rest})
    return out if moved else None


def _managers_losing(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The field managers (other than ours) whose fields an apply took over."""
    def entries(live: Mapping[str, Any]) -> dict[tuple[str, str, str], Any]:
        return {(str(e.get("manager")), str(e.get("operation")), str(e.get("subresource", ""))): e.get("fieldsV1")
                for e in (live.get("metadata") or {}).get("managedFields") or []}

    now = entries(after)
    return sorted({key[0] for key, fields in entries(before).items()
                   if key[0] != m.MANAGER and now.get(key) != fields})


@dataclass(frozen=True)
class _Restoring:
    """What an update step knows of the fields it may put back: the old manifest it was
    planned from (planned against the live object, its drifted fields hold the live
    values read) and what the server stored at Stackwright's last apply."""

    old: Any
    applied: Any

    def saw_drift(self, field: str) -> bool:
        """The plan read this field changed since Stackwright applied it."""
        if not isinstance(self.applied, Mapping) or not isinstance(self.old, Mapping):
            return False
        before = m.at_field(self.applied, field)
        return before is not m.ABSENT and m.at_field(self.old, field) != before

    def drifted(self, field: str, live: Mapping[str, Any]) -> bool:
        """The live value is not the one Stackwright applied."""
        before = m.at_field(self.applied, field) if isinstance(self.applied, Mapping) else m.ABSENT
        return before is not m.ABSENT and m.at_field(live, field) != before


def _taking_back(conflict: Conflict, ident: m.Identity, live: Mapping[str, Any],
                 restoring: _Restoring | None) -> str:
    """What an apply that met ``conflict`` takes back, in words, when the update puts
    back every field in conflict: the plan read each one changed outside Stackwright
    since its last apply, and it still has the value the plan read (so the plan's diff
    holds). Else ``conflict`` is raised, naming the fields it would not take, with a
    hint where one drifted after the plan was made."""
    view = _view(ident, live)

    def restored(field: str) -> bool:
        return restoring is not None and restoring.saw_drift(field) and \
            m.at_field(view, field) == m.at_field(restoring.old, field)

    if not conflict.fields:
        raise conflict
    kept = tuple((field, manager) for field, manager in conflict.fields if not restored(field))
    if kept:
        unseen = [field for field, _ in kept if restoring is not None and restoring.drifted(field, view)]
        hint = (f"{', '.join(unseen)} changed outside Stackwright, which this plan did not read: a plan made "
                "against the live object puts it back (`--refresh` on `up` or `plan`, or `refresh` first)"
                ) if unseen else None
        raise Conflict(conflict.action, kept, hint=hint)
    managers: dict[str, list[str]] = {}
    for field, manager in conflict.fields:
        managers.setdefault(manager, []).append(field)
    said = "; ".join(f"{', '.join(fields)} from {manager}" for manager, fields in managers.items())
    return f"takes over {said}: changed outside Stackwright since its last apply; the declared value wins"


def _timeout(annotations: Mapping[str, Any], default: float) -> float:
    value = annotations.get(m.TIMEOUT_ANNOTATION)
    if value is None:
        return default
    try:
        return float(str(value).rstrip("s"))
    except ValueError:
        raise ProviderError(f"annotation {m.TIMEOUT_ANNOTATION} must be a number of seconds, got {value!r}") from None


def _outputs(ident: m.Identity, manifest: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    return {"uid": _uid(live), "namespace": ident.namespace,
            "applied": _secret_values(ident, m.project(_view(ident, live), manifest))}


def _view(ident: m.Identity, live: Mapping[str, Any]) -> Mapping[str, Any]:
    """The live object as a manifest declares it: a Secret's ``data`` also as the
    ``stringData`` text the server never returns."""
    return m.with_string_data(live) if ident.kind == "Secret" else live


def _secret_values(ident: m.Identity, applied: Any) -> Any:
    """A Secret's projection with its values secret and the rest plain: its apiVersion,
    kind, name and namespace name other objects too, and the engine masks a secret's
    text wherever it appears. State written before held the whole projection as one
    Secret; it is split the same way."""
    if ident.kind != "Secret":
        return applied
    plain = reveal(applied)
    return _hide_secrets(ident, plain) if isinstance(plain, Mapping) else Secret(plain)


def _uid(live: Mapping[str, Any]) -> str:
    return str((live.get("metadata") or {}).get("uid", ""))


def _id_parts(manifest: Mapping[str, Any]) -> tuple[str, str]:
    return str(manifest["apiVersion"]), str(manifest["kind"])


def _hide_secrets(ident: m.Identity, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret's data read from the cluster stays secret in state and on screen."""
    if ident.kind != "Secret":
        return dict(manifest)
    return {k: ({key: Secret(v) for key, v in v.items()} if k in SECRET_FIELDS and isinstance(v, Mapping) else v)
            for k, v in manifest.items()}


def _masked_line(line: str) -> str:
    marker, _, rest = line.partition(" ")
    path = rest.split(":", 1)[0]
    if path.split(".", 1)[0] in SECRET_FIELDS:
        return f"{marker} {path}: {MASK}"
    return line
