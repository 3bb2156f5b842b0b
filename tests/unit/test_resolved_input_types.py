"""A value an Output gives an input is checked against the input's declared type, as a
value given as it is is at declaration: when the plan is made if it is known then
(nothing is applied), else at apply before the step's first provider call, and for a
delete-first replacement before its delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import stackwright as sw
from stackwright.errors import InputError
from unit.fakes import Thing
from unit.test_engine import P, Harness
from unit.test_recovery_outcomes import keyed

DBR = sw.ResourceOptions(delete_before_replace=True)


class Typed(sw.Resource, type="fake:Thing"):
    """Thing's provider, with typed nested inputs."""

    zone: str = "a"
    ref: str = ""
    label: str = ""
    tags: dict[str, str] = {}
    ports: list[int] = []
    arn: sw.Output[str]


@pytest.fixture(params=["parallel", "in-line"])
def h(tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    return keyed(Harness(tmp_path, inline=request.param == "in-line"))


def _planning_fails(h: Harness, program: Callable[[], Any]) -> InputError:
    with pytest.raises(InputError) as info:
        h.applier(program, 8, None)
    return info.value


def _line_of(text: str) -> int:
    """The line of this file that declares what ``text`` names."""
    return next(n for n, line in enumerate(Path(__file__).read_text().splitlines(), 1) if text in line)


def test_a_callback_of_the_wrong_type_known_when_planning_fails_the_plan_like_a_declaration(h: Harness) -> None:
    assert h.up(lambda: Thing("a")).ok

    def program() -> None:
        a = Thing("a")
        Thing("b", ref=a.arn.apply(lambda arn: 5))  # the wrong type

    err = _planning_fails(h, program)
    assert err.message == "expected str, got int 5"
    assert (err.resource, err.prop) == (P + "b", "ref")
    assert (err.file, err.line) == (__file__, _line_of("# the wrong type"))
    assert "Output" in (err.hint or "") and "give str" in (err.hint or "")
    assert h.providers.thing.log == [("create", "a")]


@pytest.mark.parametrize(("inputs", "message"), [
    ({"tags": {"team": "arn"}}, "expected dict[str, str], got dict {'team': 5} (at team: Input should be a "
                                "valid string)"),
    ({"ports": [80, "arn"]}, "expected list[int], got list [80, 'arn:a-1'] (at 1: Input should be a valid "
                             "integer)"),
])
def test_nested_values_an_output_gives_are_checked_too(h: Harness, inputs: dict[str, Any], message: str) -> None:
    assert h.up(lambda: Thing("a")).ok

    def program() -> None:
        a = Thing("a")
        wrong = {"tags": {"team": a.arn.apply(lambda arn: 5)}, "ports": [80, a.arn]}
        Typed("b", **{key: wrong[key] for key in inputs})

    err = _planning_fails(h, program)
    assert err.message == message and err.prop == next(iter(inputs))


def test_values_of_the_right_type_pass_when_planning_and_applying(h: Harness) -> None:
    def program() -> None:
        a = Thing("a")
        Typed("b", ref=sw.secret(a.arn), tags={"team": a.arn.apply(str.upper)}, ports=[80, a.arn.apply(len)])
        Typed("c", label=sw.Output.from_value("x").apply(str.upper), ports=sw.Output.from_value([1]))

    result = h.up(program)
    assert result.ok, result.failures
    b = h.recorded()["b"].inputs
    assert (b["tags"], b["ports"]) == ({"team": "ARN:A-1"}, [80, 7])
    again = h.up(program)  # every value known when planning now, and checked then
    assert again.ok and again.done == {}


def test_a_secret_of_the_wrong_type_is_named_by_its_type_only(h: Harness) -> None:
    assert h.up(lambda: Thing("a")).ok

    def program() -> None:
        a = Thing("a")
        Thing("b", ref=sw.secret(a.arn).apply(lambda arn: [arn]))

    err = _planning_fails(h, program)
    assert err.message == "expected str, got list (a secret: its value is not shown)"
    assert "arn:a-1" not in str(err)


def test_a_value_known_only_at_apply_fails_its_step_before_any_call(h: Harness) -> None:
    def program() -> None:
        a = Thing("a")
        Thing("b", ref=a.arn.apply(len))  # known after a is created
        Thing("independent")

    result = h.up(program)
    assert [f.urn for f in result.failures] == [P + "b"]
    assert result.failures[0].message == f"{__file__}:{_line_of('# known after a')}: ref: expected str, got int 7"
    assert "give str" in (result.failures[0].hint or "")
    assert sorted(name for _, name in h.providers.thing.log) == ["a", "independent"]


def _replaced_first(zone: str, wrong: bool) -> Callable[[], None]:
    """a is replaced (created first); b, replaced delete-first, reads a's new arn."""
    def program() -> None:
        a = Thing("a", zone=zone)
        label = a.arn.apply(lambda arn: 5 if wrong else f"{arn}!")
        Thing("b", zone=zone, label=label, opts=DBR)  # b
    return program


def test_a_delete_first_replacement_is_checked_before_its_delete_and_its_object_kept(h: Harness) -> None:
    assert h.up(_replaced_first("x", wrong=False)).ok
    thing = h.providers.thing
    before = dict(thing.objects)
    thing.log.clear()

    result = h.up(_replaced_first("y", wrong=True))

    assert [f.urn for f in result.failures] == [P + "b"]
    assert result.failures[0].message == (f"{__file__}:{_line_of('opts=DBR)  # b')}: label: expected str, got int 5 "
                                          "(found before its delete: the object is kept)")
    assert thing.log == [("create", "a")]  # b is neither deleted nor created
    assert h.recorded()["b"].id in thing.objects and h.recorded()["b"].id in before
    changes = h.store.checkpoint("dev", h.store.history("dev")[-1].number).changes
    assert [(c.urn, c.error) for c in changes if c.error] == [(P + "b", result.failures[0].message)]


def test_a_delete_first_replacement_known_before_its_delete_runs_its_callbacks_once(h: Harness) -> None:
    runs: list[str] = []

    def program(zone: str) -> Callable[[], None]:
        def declare_it() -> None:
            a = Thing("a", zone=zone)
            Thing("b", zone=zone, label=a.arn.apply(lambda arn: runs.append(arn) or f"{arn}!"), opts=DBR)
        return declare_it

    assert h.up(program("x")).ok
    runs.clear()
    h.providers.thing.log.clear()
    result = h.up(program("y"))
    assert result.ok and len(runs) == 1
    assert h.providers.thing.log[:3] == [("create", "a"), ("delete", "b"), ("create", "b")]
    assert h.recorded()["b"].inputs["label"] == h.recorded()["a"].outputs["arn"] + "!"


def test_a_value_that_reads_the_chain_deleted_with_it_is_checked_before_its_create(h: Harness) -> None:
    """oidc reads the new cluster's arn, which exists only once the old cluster is
    deleted: the value cannot be checked before oidc's own delete, only before its
    create, which then never happens."""
    def program(zone: str, wrong: bool) -> Callable[[], None]:
        def declare_it() -> None:
            cluster = Thing("cluster", zone=zone, opts=DBR)
            Thing("oidc", zone=zone, label=cluster.arn.apply(lambda arn: 5 if wrong else arn))  # oidc
        return declare_it

    assert h.up(program("x", wrong=False)).ok
    h.providers.thing.log.clear()
    result = h.up(program("y", wrong=True))
    assert [f.urn for f in result.failures] == [P + "oidc"]
    assert result.failures[0].message == (f"{__file__}:{_line_of('# oidc')}: label: expected str, got int 5")
    assert h.providers.thing.log == [("delete", "oidc"), ("delete", "cluster"), ("create", "cluster")]
