"""Output resolution: known values, unknowns, secrets and dependencies."""

from __future__ import annotations

from typing import Any

import pytest

import stackwright as sw
from stackwright.errors import ProgramError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.model.values import UNKNOWN, Secret
from stackwright.testing import declare


class Box(sw.Resource, type="test:Box"):
    name: str
    size: int = 1
    tags: dict[str, str] = {}
    arn: sw.Output[str]


def lookup_from(values: dict[tuple[str, str], Any]) -> Any:
    return lambda resource, prop: values.get((resource.resource_name, prop), UNKNOWN)


def test_apply_runs_on_known_values_only() -> None:
    holder: dict[str, Any] = {}

    def program() -> None:
        a = Box("a", name="a")
        holder["out"] = a.arn.apply(lambda arn: arn.upper())

    declare(program)
    out = holder["out"]
    assert out.resolve(lookup_from({("a", "arn"): "arn:x"})) == "ARN:X"
    assert out.resolve(lookup_from({})) is UNKNOWN


def test_all_and_fmt_combine_values() -> None:
    holder: dict[str, Any] = {}

    def program() -> None:
        a, b = Box("a", name="a"), Box("b", name="b")
        holder["all"] = Output.all(a.arn, b.arn, "x")
        holder["fmt"] = sw.fmt("{}/{name}", a.arn, name=b.arn)

    declare(program)
    lookup = lookup_from({("a", "arn"): "A", ("b", "arn"): "B"})
    assert holder["all"].resolve(lookup) == ["A", "B", "x"]
    assert holder["fmt"].resolve(lookup) == "A/B"


def test_secretness_propagates_through_apply() -> None:
    out = sw.secret("hunter2").apply(lambda v: v + "!")
    value = out.resolve(lookup_from({}))
    assert value == Secret("hunter2!") and repr(value) == "[secret]"


def test_output_as_input_records_dependency() -> None:
    def program() -> None:
        a = Box("a", name="a")
        Box("b", name=a.arn.apply(lambda v: v), tags={"src": a.arn})
        Box("c", name="c", opts=sw.ResourceOptions(depends_on=[a]))

    graph = declare(program)
    assert graph.deps["dev::test::test:Box::b"] == ["dev::test::test:Box::a"]
    assert graph.deps["dev::test::test:Box::c"] == ["dev::test::test:Box::a"]


def test_output_cannot_be_used_as_a_string() -> None:
    def program() -> None:
        a = Box("a", name="a")
        f"{a.arn}"

    with pytest.raises(ProgramError, match="sw.fmt"):
        declare(program)


def test_declaring_inside_a_callback_is_an_error() -> None:
    holder: dict[str, Any] = {}

    def program() -> None:
        a = Box("a", name="a")
        holder["out"] = a.arn.apply(lambda arn: Box("late", name=arn))

    declare(program)
    from stackwright.model import context
    from stackwright.model.context import ConfigSource, ProgramContext

    ctx = ProgramContext(stack="dev", project="test", config=ConfigSource({}, "x"))
    with context.activate(ctx), pytest.raises(ProgramError, match="inside an Output callback"):
        holder["out"].resolve(lookup_from({("a", "arn"): "A"}))


def test_invalid_inputs_fail_at_declaration_with_property_and_line() -> None:
    def wrong_type() -> None:
        Box("a", name="a", size="big")

    with pytest.raises(sw.StackwrightError) as info:
        declare(wrong_type)
    err = info.value
    assert err.prop == "size" and "expected int" in err.message and err.line is not None
    assert err.file is not None and err.file.endswith("test_output.py")

    with pytest.raises(sw.StackwrightError, match="did you mean 'size'"):
        declare(lambda: Box("a", name="a", sise=2))
    with pytest.raises(sw.StackwrightError, match="missing required input 'name'"):
        declare(lambda: Box("a"))
    with pytest.raises(sw.StackwrightError, match=r"tags"):
        declare(lambda: Box("a", name="a", tags={"k": 1}))


def test_component_parents_children_and_urns() -> None:
    class Site(sw.Component, type="test:Site"):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.box = Box("box", name=name)

    def program() -> None:
        Site("web")
        Box("box", name="top")

    graph = declare(program)
    assert set(graph.resources) == {"dev::test::test:Box::web$box", "dev::test::test:Box::box"}
    child = graph.resources["dev::test::test:Box::web$box"]
    assert child.resource_parent is not None and child.resource_parent.urn == "dev::test::test:Site::web"


def test_duplicate_names_under_one_parent_fail() -> None:
    with pytest.raises(sw.StackwrightError, match="duplicate resource name 'a'"):
        declare(lambda: [Box("a", name="1"), Box("a", name="2")])


def test_config_typed_getters_and_missing_key() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        config = sw.Config()
        seen["n"] = config.require_int("replicas")
        seen["flag"] = config.get_bool("debug", False)
        config.require("region")

    with pytest.raises(sw.StackwrightError) as info:
        declare(program, config={"replicas": 3})
    assert seen == {"n": 3, "flag": False}
    assert "'region'" in info.value.message and info.value.file == "stacks/dev.yaml"


def test_resource_attribute_names_do_not_hide_inputs() -> None:
    holder: dict[str, Any] = {}

    def program() -> None:
        holder["box"] = Box("b", name="real-name")

    declare(program)
    box: Resource = holder["box"]
    assert box.resource_name == "b"
    assert isinstance(box.name, Output)  # type: ignore[attr-defined]


def test_a_raising_callback_is_a_located_error_that_keeps_nested_secrets_out() -> None:
    from stackwright.errors import CallbackError

    holder: dict[str, Any] = {}

    def parse(tags: dict[str, Any]) -> int:
        return int(tags["port"])  # raises: the port given is a password

    def program() -> None:
        a = Box("a", name="a")
        holder["plain"] = a.arn.apply(int)
        holder["nested"] = Output._ref(a, "tags").apply(parse)

    declare(program)
    with pytest.raises(CallbackError) as plain:
        holder["plain"].resolve(lookup_from({("a", "arn"): "arn:x"}))
    assert "ValueError: invalid literal for int() with base 10: 'arn:x'" in str(plain.value)
    with pytest.raises(CallbackError) as nested:
        holder["nested"].resolve(lookup_from({("a", "tags"): {"port": Secret("hunter2")}}))
    error = nested.value
    assert "hunter2" not in str(error) and "message is not shown" in error.message
    assert error.__cause__ is None and error.__suppress_context__
    assert (error.file, error.line) == (__file__, parse.__code__.co_firstlineno + 1)


def test_a_callback_given_a_secret_shows_nothing_made_of_it_in_its_error() -> None:
    from stackwright.errors import CallbackError

    holder: dict[str, Any] = {}

    def program() -> None:
        a = Box("a", name="a")
        holder["lowered"] = a.arn.apply(lambda password: int(password.lower()))

    declare(program)
    with pytest.raises(CallbackError) as raised:
        holder["lowered"].resolve(lookup_from({("a", "arn"): Secret("Hunter2-XYZ")}))
    assert "hunter2-xyz" not in str(raised.value).lower()
    assert "ValueError" in raised.value.message


def test_a_callback_that_exits_is_a_located_error_and_ctrl_c_stays_ctrl_c() -> None:
    """``sys.exit()`` in a callback must fail the step, not end the command half way
    through an apply; its message is the user's, not shown when made of a secret.
    Ctrl-C goes on to whoever handles it."""
    import sys

    from stackwright.errors import CallbackError

    holder: dict[str, Any] = {}

    def leave(value: str) -> None:
        sys.exit(f"no account for {value}")

    def interrupted(value: str) -> None:
        raise KeyboardInterrupt

    def program() -> None:
        a = Box("a", name="a")
        holder["exits"], holder["interrupted"] = a.arn.apply(leave), a.arn.apply(interrupted)

    declare(program)
    with pytest.raises(CallbackError) as plain:
        holder["exits"].resolve(lookup_from({("a", "arn"): "arn:x"}))
    assert plain.value.message == "an Output callback called exit('no account for arn:x')"
    assert (plain.value.file, plain.value.line) == (__file__, leave.__code__.co_firstlineno + 1)
    with pytest.raises(CallbackError) as secret:
        holder["exits"].resolve(lookup_from({("a", "arn"): Secret("hunter2")}))
    assert "hunter2" not in str(secret.value) and secret.value.message.startswith("an Output callback called exit (")
    with pytest.raises(KeyboardInterrupt):
        holder["interrupted"].resolve(lookup_from({("a", "arn"): "arn:x"}))


def test_declaring_off_the_programs_thread_says_so_and_where() -> None:
    import threading

    with pytest.raises(ProgramError, match="only be declared while a Stackwright program runs"):
        Box("alone", name="alone")
    caught: list[BaseException] = []

    def declare_here() -> None:
        try:
            Box("from-thread", name="t")  # in the thread
        except ProgramError as exc:
            caught.append(exc)

    def program() -> None:
        worker = threading.Thread(target=declare_here, name="worker")
        worker.start()
        worker.join()

    declare(program)
    [error] = caught
    assert isinstance(error, ProgramError)
    assert error.message.startswith("'worker' is not the thread that runs the program")
    assert (error.file, error.line) == (__file__, declare_here.__code__.co_firstlineno + 2)


def test_a_value_made_of_secrets_carries_their_texts_and_all_keeps_each_ones_secretness() -> None:
    from stackwright.model.values import secret_texts

    holder: dict[str, Any] = {}

    def program() -> None:
        a = Box("a", name="a")
        holder["formatted"] = sw.fmt("echo out-{}", a.arn)
        holder["pair"] = Output.all(a.arn, "e")

    declare(program)
    lookup = lookup_from({("a", "arn"): Secret("hunter2-XYZ")})
    formatted = holder["formatted"].resolve(lookup)
    assert formatted == Secret("echo out-hunter2-XYZ")
    assert secret_texts(formatted) == {"echo out-hunter2-XYZ", "hunter2-XYZ"}
    pair = holder["pair"].resolve(lookup)
    assert pair == [Secret("hunter2-XYZ"), "e"]
    assert secret_texts(pair) == {"hunter2-XYZ"}


def test_resolving_inputs_says_in_the_same_walk_what_they_hold() -> None:
    from stackwright.model.output import HOLDS_SECRET, HOLDS_UNKNOWN, resolve_marking, resolve_value

    holder: dict[str, Any] = {}

    def program() -> None:
        a = Box("a", name="a")
        holder["plain"] = {"name": "x", "tags": [{"k": "v"}], "n": (1, 2)}
        holder["secret"] = {"outer": [{"deep": sw.secret("hunter2")}]}
        holder["unknown"] = {"ref": a.arn}
        holder["both"] = {"ref": [a.arn], "s": Secret("p")}

    declare(program)
    lookup = lookup_from({})
    expected = {"plain": 0, "secret": HOLDS_SECRET, "unknown": HOLDS_UNKNOWN, "both": HOLDS_SECRET | HOLDS_UNKNOWN}
    for name, marks in expected.items():
        value, found = resolve_marking(holder[name], lookup)
        assert found == marks, name
        assert value == resolve_value(holder[name], lookup)
    known = resolve_marking({"ref": holder["unknown"]["ref"]}, lookup_from({("a", "arn"): Secret("arn:x")}))
    assert known == ({"ref": Secret("arn:x")}, HOLDS_SECRET)


def test_the_outputs_a_program_makes_and_nothing_uses_are_run_once_their_sources_are_known() -> None:
    from stackwright.errors import CallbackError

    ran: list[str] = []

    def note(tag: str) -> Any:
        def record(value: Any) -> Any:
            ran.append(tag)
            return value
        return record

    def program() -> None:
        a = Box("a", name="a")
        Box("b", name=a.arn.apply(note("input")))
        inside = a.arn.apply(note("inside a constant"))
        Box("c", name=Output.all({"k": inside}).apply(str))
        sw.export("n", {"len": a.arn.apply(note("exported"))})
        source = a.arn.apply(note("source"))
        source.apply(note("leaf"))
        a.arn.apply(int)  # raises once known

    graph = declare(program)
    assert len(graph.leaves) == 2
    assert graph.leaves.run(lookup_from({})) == [] and ran == [] and len(graph.leaves) == 2
    [raised] = graph.leaves.run(lookup_from({("a", "arn"): "arn:x"}))
    assert isinstance(raised, CallbackError) and "ValueError" in raised.message
    assert ran == ["source", "leaf"] and len(graph.leaves) == 0
    assert graph.leaves.run(lookup_from({("a", "arn"): "arn:x"})) == [] and ran == ["source", "leaf"]


def test_outputs_made_outside_a_program_are_no_leaves_and_resolve_as_ever() -> None:
    out = Output.from_value(2).apply(lambda v: v * 3)
    assert out.resolve(lookup_from({})) == 6
    assert declare(lambda: None).leaves.run(lookup_from({})) == []
