"""The Plan is a value: frozen, hashable, pinned, and serialized one way, reversibly."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
import json
from typing import Any

import pytest

import stackwright as sw
from stackwright.model.values import UNKNOWN, Secret
from stackwright.plan.plan import Leftover, Op, Plan, Step
from stackwright.plan.planner import make_plan
from stackwright.state.records import PendingOperation, ResourceState, Snapshot
from stackwright.testing import declare
from unit.fakes import FakeProviders, Thing

P = "dev::test::fake:Thing::"


def record(name: str, deps: tuple[str, ...] = (), **inputs: Any) -> ResourceState:
    full = {"label": "", "zone": "a", "ref": "", **inputs}
    return ResourceState(urn=P + name, type="fake:Thing", id=f"{name}-id", inputs=full,
                         outputs={**full, "arn": f"arn:{name}-id"}, deps=list(deps))


def every_kind_of_step() -> Plan:
    """A real plan with a create, an update, a replace, a delete, an unchanged resource,
    a rename, secrets and unknowns in inputs and outputs, and a leftover."""
    def program() -> None:
        fresh = Thing("fresh", label="new")
        Thing("updated", label=sw.secret("s3cret"), ref=fresh.arn)
        moved = Thing("moved", zone="b", ref=fresh.arn.apply(lambda arn: f"{arn}/x"))
        Thing("same", label="same")
        Thing("renamed", label="r", opts=sw.ResourceOptions(aliases=[P + "old-name"]))
        sw.export("url", moved.arn)
        sw.export("secret", sw.secret({"k": ["v", 1, None, True, 2.5]}))

    pending = PendingOperation(token="tok-1", urn=P + "moved", type="fake:Thing", op="delete",
                               inputs={"label": Secret("old"), "zone": "a"}, resource_id="older-id")
    snapshot = Snapshot("dev", "lineage-1", 7, {r.urn: r for r in (
        record("updated", label=Secret("old")), record("moved"), record("same", label="same"),
        record("gone", deps=(P + "same",)), record("old-name", label="r"))},
        {"url": "arn:moved-id", "secret": Secret("x")}, [pending])
    plan = make_plan(declare(program), snapshot, FakeProviders())
    return dataclasses.replace(plan, program_digest="p" * 64, config_digest="c" * 64,
                               providers={"fake": "1.2.3"})


def test_a_real_plan_covers_every_kind_of_step() -> None:
    plan = every_kind_of_step()
    ops = {s.urn.removeprefix(P): s.op for s in plan.steps}
    assert ops == {"fresh": Op.CREATE, "updated": Op.UPDATE, "moved": Op.REPLACE, "same": Op.SAME,
                   "renamed": Op.SAME, "gone": Op.DELETE}
    assert [o.id for o in plan.leftovers] == ["older-id"]


def test_to_json_and_from_json_round_trip_exactly_through_json_text() -> None:
    plan = every_kind_of_step()
    text = json.dumps(plan.to_json(), sort_keys=True)
    again = Plan.from_json(json.loads(text))
    assert again == plan
    assert hash(again) == hash(plan)
    assert json.dumps(again.to_json(), sort_keys=True) == text
    steps = {s.urn: s for s in again.steps}
    assert steps[P + "updated"].inputs["label"] == Secret("s3cret")  # type: ignore[index]
    assert steps[P + "moved"].inputs["ref"] is UNKNOWN  # type: ignore[index]
    assert again.leftovers[0].inputs["label"] == Secret("old")


def test_the_serialization_covers_every_field_with_a_known_form() -> None:
    """A field added later is serialized by its declared type; its type must be one
    the codec knows, or plain JSON."""
    from stackwright.plan.plan import _DECODE, _ENCODE

    plain = {"str", "int", "bool", "str | None"}
    for cls in (Plan, Step, Leftover):
        for f in dataclasses.fields(cls):
            if f.name not in ("steps", "leftovers"):
                assert str(f.type) in plain | (_ENCODE.keys() & _DECODE.keys()), (cls, f.name, f.type)
    raw = every_kind_of_step().to_json()
    assert set(raw) - {"format"} == {f.name for f in dataclasses.fields(Plan)}
    assert all(set(s) == {f.name for f in dataclasses.fields(Step)} for s in raw["steps"])


def test_the_plan_is_frozen_and_hashable_and_carries_its_pins() -> None:
    plan = every_kind_of_step()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.base_serial = 8  # type: ignore[misc]
    assert {plan: "reviewed"}[every_kind_of_step()] == "reviewed"
    assert (plan.base_serial, plan.program_digest, plan.config_digest, dict(plan.providers)) == (
        7, "p" * 64, "c" * 64, {"fake": "1.2.3"})
    assert plan != dataclasses.replace(plan, config_digest="d" * 64)


def test_a_plan_made_against_live_objects_says_so_and_keeps_it_through_json() -> None:
    """``refreshed`` pins that the plan's old values were read from the live objects
    (``refreshed_snapshot``), not the recorded state; a plan written before the field
    existed reads back as made against the recorded state."""
    from stackwright.engine.refresh import RefreshResult, refreshed_snapshot

    plain = every_kind_of_step()
    assert plain.refreshed is False and "refreshed" not in plain.view()
    snapshot = Snapshot("dev", "lineage-1", 7, {P + "same": record("same", label="same")}, {})
    live = refreshed_snapshot(snapshot, RefreshResult())
    assert (live.live, live.serial) == (True, 7)
    plan = make_plan(declare(lambda: Thing("same", label="same")), live, FakeProviders())
    assert plan.refreshed is True and plan.view()["refreshed"] is True and plan.base_serial == 7
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    older = plain.to_json()
    del older["refreshed"]
    assert Plan.from_json(older) == plain
    assert plan.digest() != dataclasses.replace(plan, refreshed=False).digest()


@pytest.mark.parametrize("made", ["planned", "read back"])
def test_nothing_a_plan_holds_can_be_changed_in_place(made: str) -> None:
    """Not only its fields: a step's inputs, recorded values and options, the stack
    outputs, the pinned versions, a leftover's inputs, the tuples of steps."""
    plan = every_kind_of_step()
    if made == "read back":
        plan = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    digest, before = plan.digest(), Plan.from_json(plan.to_json())
    steps = {s.urn: s for s in plan.steps}
    updated, same = steps[P + "updated"], steps[P + "same"]
    assert updated.inputs is not None and updated.old_inputs is not None and updated.old_outputs is not None
    changes = [
        lambda: updated.inputs.__setitem__("label", "changed"),  # type: ignore[union-attr]
        lambda: updated.old_inputs.update(label="changed"),  # type: ignore[union-attr]
        lambda: updated.old_outputs.pop("arn"),  # type: ignore[union-attr]
        lambda: same.inputs.clear(),  # type: ignore[union-attr]
        lambda: same.options.setdefault("protect", True),  # type: ignore[attr-defined]
        lambda: plan.outputs.__delitem__("url"),  # type: ignore[attr-defined]
        lambda: plan.old_outputs.popitem(),  # type: ignore[attr-defined]
        lambda: plan.providers.__setitem__("fake", "9"),  # type: ignore[attr-defined]
        lambda: plan.leftovers[0].inputs.__setitem__("zone", "b"),  # type: ignore[attr-defined]
    ]
    for change in changes:
        with pytest.raises(TypeError, match="cannot be changed"):
            change()
    with pytest.raises(TypeError):
        plan.steps[0] = same  # type: ignore[index]
    assert plan.digest() == digest and plan == before
    assert copy.deepcopy(plan) == plan and pickle.loads(pickle.dumps(plan)) == plan
    assert json.dumps(plan.to_json(), sort_keys=True) == json.dumps(before.to_json(), sort_keys=True)


def test_masking_is_a_separate_view() -> None:
    plan = every_kind_of_step()
    full, view = json.dumps(plan.to_json()), json.dumps(plan.view())
    assert "s3cret" in full and '"$secret"' in full
    assert "s3cret" not in view and "[secret]" in view and '"$secret"' not in view
    assert "s3cret" not in plan.digest() and plan.digest() == Plan.from_json(plan.to_json()).digest()


def test_the_digest_is_the_hash_of_the_masked_view() -> None:
    """Approvals and audit events name plans by digest: it stays the sha256 of the
    masked view's sorted JSON, whatever shape the inputs hold."""
    import hashlib
    from types import MappingProxyType

    odd = {"secret": Secret("pw"), "deep": [Secret({"a": 1}), (UNKNOWN, 2)], "ro": MappingProxyType({"z": 1, "a": Secret("x")}),
           "object": object.__new__(Thing), "set": frozenset({1})}
    plan = every_kind_of_step()
    steps = (dataclasses.replace(plan.steps[0], inputs=odd, old_inputs=odd, op=Op.UPDATE), *plan.steps[1:])
    plan = dataclasses.replace(plan, steps=steps)
    body = json.dumps(plan.view(), sort_keys=True, separators=(",", ":"), default=str)
    assert '"ro":{"a":"[secret]","z":1}' in body and '"deep":["[secret]",[{"$unknown":true},2]]' in body
    assert plan.digest() == hashlib.sha256(body.encode()).hexdigest()


def test_anything_but_a_plan_is_refused() -> None:
    raw = every_kind_of_step().to_json()
    for broken in ({**raw, "format": 99}, {k: v for k, v in raw.items() if k != "steps"},
                   {**raw, "steps": [{**raw["steps"][0], "op": "explode"}]}):
        with pytest.raises((KeyError, TypeError, ValueError)):
            Plan.from_json(broken)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    """A value tree as programs and providers make them: JSON scalars, lists and maps,
    with secrets and unknowns at any depth."""
    kind = rng.randrange(9 if depth < 4 else 5)
    scalars = [None, True, False, rng.randint(-2**40, 2**40), rng.random() * 1e6, "",
               "".join(rng.choice("aé$ {}\"\\\n😀") for _ in range(rng.randrange(8)))]
    if kind < 4:
        return rng.choice(scalars)
    if kind == 4:
        return UNKNOWN
    if kind == 5:
        return Secret(_random_value(rng, depth + 1))
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}{rng.choice('ab$')}": _random_value(rng, depth + 1) for i in range(rng.randrange(4))}


@pytest.mark.parametrize("seed", range(50))
def test_any_value_tree_survives_the_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    base = every_kind_of_step()
    steps = tuple(dataclasses.replace(s, inputs={"v": _random_value(rng)}, old_outputs={"w": _random_value(rng)})
                  for s in base.steps)
    plan = dataclasses.replace(base, steps=steps, outputs={"out": _random_value(rng)})
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
