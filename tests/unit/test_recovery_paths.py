"""Every recovery path, deterministically: a run is "killed" just before or just after
one provider call, by copying the committed state and the cloud's objects at that
instant (what a SIGKILL would leave), and the next run must converge from the copy:
each declared object exists once, with the declared inputs, recorded under its URN;
no object without a record; nothing pending. No random seed is involved.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import stackwright as sw
from stackwright.providers.protocol import Created, OperationContext, ReadResult
from stackwright.state.sqlite import SqliteStateStore
from unit.fakes import Thing, ThingProvider
from unit.test_engine import Harness

Program = Callable[[], None]


class TokenThings(ThingProvider):
    """The in-memory cloud, plus what real providers do to find an object a crashed
    create made: each object remembers the token of the create that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.hook: Callable[[str, str, str], None] = lambda op, when, name: None

    def create(self, ctx: OperationContext, inputs: Any) -> Created:
        self.hook("create", "before", ctx.name)
        made = super().create(ctx, inputs)
        self.tokens[made.id], self.names[made.id] = ctx.token, ctx.name
        self.hook("create", "after", ctx.name)
        return made

    def read(self, ctx: OperationContext, id: str | None, inputs: Any, outputs: Any) -> ReadResult | None:
        if id is None:
            id = next((oid for oid, token in self.tokens.items()
                       if token == ctx.token and oid in self.objects), None)
        return super().read(ctx, id, inputs, outputs)

    def update(self, ctx: OperationContext, id: str, old_inputs: Any, old_outputs: Any,
               new_inputs: Any) -> Any:
        self.hook("update", "before", ctx.name)
        out = super().update(ctx, id, old_inputs, old_outputs, new_inputs)
        self.hook("update", "after", ctx.name)
        return out

    def delete(self, ctx: OperationContext, id: str, inputs: Any, outputs: Any) -> None:
        self.hook("delete", "before", ctx.name)
        super().delete(ctx, id, inputs, outputs)
        self.hook("delete", "after", ctx.name)


@dataclass
class Crash:
    """What a kill at one instant leaves: the committed state file and the cloud."""

    state: Path
    objects: dict[str, dict[str, Any]]
    tokens: dict[str, str]
    names: dict[str, str]
    count: int


def _harness(tmp: Path, name: str) -> Harness:
    folder = tmp / name
    folder.mkdir()
    h = Harness(folder)
    h.providers.thing = TokenThings()
    return h


def _killed_at(tmp: Path, before: Program, after: Program, op: str, when: str, name: str) -> Crash:
    """Apply ``before``, then apply ``after`` and copy everything at the instant."""
    h = _harness(tmp, "first")
    assert h.up(before).ok
    things: TokenThings = h.providers.thing  # type: ignore[assignment]
    seen: list[Crash] = []

    def hook(this_op: str, this_when: str, this_name: str) -> None:
        if (this_op, this_when, this_name) == (op, when, name) and not seen:
            target = tmp / "killed.db"
            with sqlite3.connect(tmp / "first" / "state.db") as src, sqlite3.connect(target) as dst:
                src.backup(dst)
            seen.append(Crash(target, copy.deepcopy(things.objects), dict(things.tokens),
                              dict(things.names), things.count))

    things.hook = hook
    h.up(after)
    assert seen, f"the run never reached {when} {op} of {name}"
    return seen[0]


def _resume(tmp: Path, crash: Crash, program: Program) -> Harness:
    """What the next `up` does after the kill: recover, plan, apply."""
    h = _harness(tmp, "next")
    h.store = SqliteStateStore(crash.state)
    things: TokenThings = h.providers.thing  # type: ignore[assignment]
    things.objects, things.tokens, things.names = crash.objects, crash.tokens, crash.names
    things.count = crash.count
    h.recover()
    assert h.up(program).ok
    return h


def _assert_converged(h: Harness, program: Program) -> None:
    desired = {urn.rsplit("$", 1)[-1].rsplit("::", 1)[-1]: res
               for urn, res in sw.testing.declare(program).resources.items()}
    things: TokenThings = h.providers.thing  # type: ignore[assignment]
    recorded = h.recorded()
    assert sorted(recorded) == sorted(desired)
    assert sorted(things.names[oid] for oid in things.objects) == sorted(desired), \
        "an object was duplicated or orphaned"
    assert {r.id for r in recorded.values()} == set(things.objects)
    for name, row in recorded.items():
        live = things.objects[row.id]
        for key in ("label", "zone"):
            assert live.get(key) == desired[name].inputs.get(key), (name, key)
        if live.get("ref"):
            assert live["ref"] == f"arn:{recorded['a'].id}"
    assert h.store.snapshot("dev").pending == []


def nothing() -> None:
    pass


def one() -> None:
    Thing("a", label="one")


def one_relabelled() -> None:
    Thing("a", label="two")


def pair_in_zone_a() -> None:
    a = Thing("a", zone="a")
    Thing("b", ref=a.arn)


def pair_in_zone_b() -> None:
    a = Thing("a", zone="b")
    Thing("b", ref=a.arn)


def dbr_in_zone_a() -> None:
    Thing("a", zone="a", opts=sw.ResourceOptions(delete_before_replace=True))


def dbr_in_zone_b() -> None:
    Thing("a", zone="b", opts=sw.ResourceOptions(delete_before_replace=True))


CASES = [
    pytest.param(nothing, one, "create", "before", "a", id="create-before-call"),
    pytest.param(nothing, one, "create", "after", "a", id="create-after-call"),
    pytest.param(one, one_relabelled, "update", "before", "a", id="update-before-call"),
    pytest.param(one, one_relabelled, "update", "after", "a", id="update-after-call"),
    pytest.param(one, nothing, "delete", "before", "a", id="delete-before-call"),
    pytest.param(one, nothing, "delete", "after", "a", id="delete-after-call"),
    pytest.param(pair_in_zone_a, pair_in_zone_b, "create", "before", "a", id="replace-new-half-before"),
    pytest.param(pair_in_zone_a, pair_in_zone_b, "create", "after", "a", id="replace-new-half-after"),
    pytest.param(pair_in_zone_a, pair_in_zone_b, "update", "before", "b", id="replace-dependent-before"),
    pytest.param(pair_in_zone_a, pair_in_zone_b, "update", "after", "b", id="replace-dependent-after"),
    pytest.param(pair_in_zone_a, pair_in_zone_b, "delete", "before", "a", id="replace-old-half-before"),
    pytest.param(pair_in_zone_a, pair_in_zone_b, "delete", "after", "a", id="replace-old-half-after"),
    pytest.param(dbr_in_zone_a, dbr_in_zone_b, "delete", "before", "a", id="dbr-delete-before"),
    pytest.param(dbr_in_zone_a, dbr_in_zone_b, "delete", "after", "a", id="dbr-delete-after"),
    pytest.param(dbr_in_zone_a, dbr_in_zone_b, "create", "before", "a", id="dbr-create-before"),
    pytest.param(dbr_in_zone_a, dbr_in_zone_b, "create", "after", "a", id="dbr-create-after"),
]


@pytest.mark.parametrize(("before", "after", "op", "when", "name"), CASES)
def test_a_run_killed_at_a_provider_call_converges_on_the_next(
    tmp_path: Path, before: Program, after: Program, op: str, when: str, name: str,
) -> None:
    crash = _killed_at(tmp_path, before, after, op, when, name)
    _assert_converged(_resume(tmp_path, crash, after), after)


def test_a_create_killed_after_the_call_is_adopted_not_made_again(tmp_path: Path) -> None:
    crash = _killed_at(tmp_path, nothing, one, "create", "after", "a")
    h = _resume(tmp_path, crash, one)
    assert h.providers.thing.calls["create"] == 0


def test_a_delete_killed_before_the_call_is_done_by_the_next_run(tmp_path: Path) -> None:
    """The object still exists: its record must not be dropped (that would orphan it)."""
    crash = _killed_at(tmp_path, one, nothing, "delete", "before", "a")
    h = _resume(tmp_path, crash, nothing)
    assert h.providers.thing.objects == {} and h.providers.thing.calls["delete"] == 1
