"""What the last plain ``refresh`` found, kept beside the project rather than in the state.

A plain ``refresh`` only reads (it never writes the state), yet the next ``up`` must not
answer "No changes" to drift the user was just shown. The note remembers which resources
drifted at which state serial; while the state is still at that serial, ``up``,
``preview`` and ``plan --out`` (one code path: ``operations.update.preview``) read the
live objects before planning, so the plan puts the declared values back (or says why it
won't, e.g. ``ignore_changes``). A saved plan made so says it (``Plan.refreshed``), and
its apply reads the live objects again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.operations.session import StackSession

if TYPE_CHECKING:
    from stackwright.engine.refresh import RefreshResult


# Every command loads this class: its methods are written, not generated (see
# stackwright.dataclass_methods); it behaves as ``@dataclass(frozen=True)``.


@frozen_record
class DriftNote(FrozenCompared):
    """Which resources the last plain ``refresh`` found drifted, at which state serial."""

    serial: int
    resources: tuple[str, ...]

    def __init__(self, serial: int, resources: tuple[str, ...]) -> None:
        object.__setattr__(self, "serial", serial)
        object.__setattr__(self, "resources", resources)


STEP_NOTE = "changed outside Stackwright (found by the last `refresh`): planned against the live object"


def _path(session: StackSession) -> Path:
    return session.project.state_dir / "cache" / "drift" / f"{session.stack}.json"


def remember(session: StackSession, serial: int, result: RefreshResult) -> None:
    """Keep what ``result`` found at ``serial`` for the next ``up``; no drift, no note."""
    path = _path(session)
    drifted = sorted(d.urn for d in result.drift if d.kind != "outputs")
    if not drifted:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"serial": serial, "resources": drifted}))
    temporary.replace(path)


def pending(session: StackSession) -> DriftNote | None:
    """The note, while nothing has been recorded since the refresh that wrote it."""
    path = _path(session)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if session.store.snapshot(session.stack).serial != data["serial"]:
        path.unlink(missing_ok=True)
        return None
    return DriftNote(int(data["serial"]), tuple(data["resources"]))
