"""Direct state edits: forgetting a resource without deleting it."""

from __future__ import annotations

from stackwright.engine.events import EventSink
from stackwright.errors import StateError
from stackwright.operations.session import StackSession, stack_lock
from stackwright.state.records import Change


def forget(session: StackSession, urn: str, *, force: bool = False, sink: EventSink | None = None) -> int | None:
    with stack_lock(session, "state-rm", sink):
        snapshot = session.store.snapshot(session.stack)
        record = snapshot.resources.get(urn)
        if record is None:
            raise StateError(f"no recorded resource {urn}", hint="`stackwright state ls` lists them")
        if record.protect and not force:
            raise StateError("resource is protected; forgetting it would let the next `up` or "
                             "`destroy` lose track of it", resource=urn,
                             hint="pass --force to forget it anyway (the object itself is never deleted)")
        dependents = [r.urn for r in snapshot.resources.values() if urn in r.deps]
        if dependents and not force:
            raise StateError(f"{len(dependents)} resource(s) depend on it: {', '.join(dependents[:3])}",
                             resource=urn, hint="forget those first, or pass --force")
        writer = session.store.begin(session.stack, "state-rm", session.who)
        writer.remove_resource(urn, Change(urn, record.type, "forget"))
        checkpoint = writer.finish("succeeded", None)
    return checkpoint.number if checkpoint else None
