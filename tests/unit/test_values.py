"""Secret and unknown markers: what people are shown, what is stored, what providers get.

A secret nested at any depth in lists and dicts must be masked when shown and kept
marked when stored; these are the checks a user can't see fail.
"""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from stackwright.model.values import (
    MASK,
    UNKNOWN,
    Secret,
    carry_secrets,
    from_json,
    is_plain,
    is_secret,
    is_unknown,
    mark_containing,
    mask_text,
    marker_json,
    masked,
    remark_secrets,
    reveal,
    secret_texts,
    to_json,
    wrap_secret_keys,
)


def nest(leaf: Any, depth: int) -> Any:
    """``leaf`` under ``depth`` alternating levels of dict, list and tuple."""
    value = leaf
    for level in range(depth):
        value = ({"k": value, "plain": "ok"}, ["ok", value], ("ok", value))[level % 3]
    return value


@pytest.mark.parametrize("depth", range(7))
def test_a_secret_at_any_depth_is_masked_and_the_rest_shown(depth: int) -> None:
    shown = masked(nest(Secret("hunter2"), depth))
    assert "hunter2" not in json.dumps(shown)
    assert json.dumps(shown) == json.dumps(nest(MASK, depth))


@pytest.mark.parametrize("depth", range(7))
def test_a_secret_at_any_depth_is_found_and_revealed(depth: int) -> None:
    value = nest(Secret("hunter2"), depth)
    assert is_secret(value)
    assert not is_secret(nest("hunter2", depth))
    assert json.dumps(reveal(value)) == json.dumps(nest("hunter2", depth))


def test_a_secret_holding_a_tree_is_masked_whole() -> None:
    assert masked({"db": Secret({"user": "u", "password": ["p", 1]})}) == {"db": MASK}


def test_masked_and_reveal_leave_plain_values_alone() -> None:
    for value in ("text", 3, 2.5, True, None, UNKNOWN):
        assert masked(value) is value
        assert reveal(value) is value
    assert masked(("a", 1)) == ["a", 1]


@pytest.mark.parametrize("depth", range(7))
def test_an_unknown_at_any_depth_is_found(depth: int) -> None:
    assert is_unknown(nest(UNKNOWN, depth))
    assert is_unknown(nest(Secret(UNKNOWN), depth))
    assert not is_unknown(nest("known", depth))
    assert not is_unknown(nest(Secret("known"), depth))


def test_other_objects_hold_no_secret_and_no_unknown() -> None:
    for value in (b"bytes", {"a", "b"}, object()):
        assert not is_secret(value)
        assert not is_unknown(value)
        assert masked(value) is value


def test_unknown_is_one_value_through_copy_and_pickle() -> None:
    assert copy.deepcopy(UNKNOWN) is UNKNOWN
    assert pickle.loads(pickle.dumps({"v": UNKNOWN}))["v"] is UNKNOWN
    assert repr(UNKNOWN) == "(known after apply)"
    assert repr(Secret("hunter2")) == MASK


@pytest.mark.parametrize("depth", range(7))
def test_the_stored_form_keeps_secrets_and_unknowns_at_any_depth(depth: int) -> None:
    value = nest({"s": Secret("hunter2"), "u": UNKNOWN}, depth)
    stored = json.loads(json.dumps(to_json(value)))
    assert json.dumps(stored).count('"$secret": "hunter2"') == 1
    assert json.dumps(stored).count('"$unknown": true') == 1
    assert from_json(stored) == json.loads(json.dumps(value, default=marker_json), object_hook=from_json)
    back = from_json(stored)
    assert is_secret(back) and is_unknown(back)
    assert masked(back) == masked(json.loads(json.dumps(value, default=marker_json), object_hook=from_json))


def test_a_secret_holding_a_secret_or_a_tree_round_trips() -> None:
    value = Secret({"list": [1, Secret("x")], "unknown": UNKNOWN})
    assert from_json(json.loads(json.dumps(to_json(value)))) == value


def test_marker_json_writes_markers_and_refuses_other_objects() -> None:
    assert json.loads(json.dumps({"s": Secret("p"), "u": UNKNOWN, "t": (1, 2)}, default=marker_json)) == {
        "s": {"$secret": "p"},
        "u": {"$unknown": True},
        "t": [1, 2],
    }
    assert marker_json((1, Secret("p"))) == [1, Secret("p")]
    with pytest.raises(TypeError, match="set is not JSON serialisable"):
        marker_json({1})


def test_from_json_reads_only_exact_markers() -> None:
    assert from_json({"$unknown": False}) == {"$unknown": False}
    assert from_json({"$secret": "p", "other": 1}) == {"$secret": "p", "other": 1}
    assert from_json({"$secret": "p"}) == Secret("p")


def test_wrap_secret_keys_wraps_only_the_named_keys_once() -> None:
    values = {"password": "p", "name": "n", "token": Secret("t")}
    out = wrap_secret_keys(values, frozenset({"password", "token", "absent"}))
    assert out == {"password": Secret("p"), "name": "n", "token": Secret("t")}
    assert values["password"] == "p"


def test_secret_texts_are_every_leaf_inside_secrets_only() -> None:
    value = {
        "plain": "visible",
        "db": Secret({"password": "hunter2", "port": 5432, "on": True, "none": None, "empty": ""}),
        "list": [Secret(["a", ("b", UNKNOWN)])],
    }
    assert secret_texts(value) == {"hunter2", "5432", "a", "b"}
    into = {"earlier"}
    assert secret_texts(Secret("x"), into) is into and into == {"earlier", "x"}


def test_mark_containing_marks_strings_that_hold_a_secret_at_any_depth() -> None:
    value = {"log": ["connecting with hunter2 now", "done"], "n": 3, "t": ("hunter2",)}
    assert mark_containing(value, {"hunter2"}) == {
        "log": [Secret("connecting with hunter2 now"), "done"],
        "n": 3,
        "t": [Secret("hunter2")],
    }


def test_mask_text_hides_the_longest_secret_whole() -> None:
    text = "user abc, password abcdef, other xyz"
    assert mask_text(text, {"abc", "abcdef", "unused"}) == f"user {MASK}, password {MASK}, other xyz"
    assert mask_text("key=xab", {"b", "ab"}) == f"key=x{MASK}"


def test_remark_secrets_follows_a_normalised_value() -> None:
    original = {"a": Secret("p"), "b": ["x", Secret("q")], "c": "plain"}
    changed = {"a": "P", "b": ["X", "Q"], "c": "PLAIN", "d": "new"}
    assert remark_secrets(original, changed) == {
        "a": Secret("P"), "b": ["X", Secret("Q")], "c": "PLAIN", "d": "new",
    }
    assert remark_secrets({"a": Secret("p"), "c": "x"}, {"a": "P", "c": "X"}) == {"a": Secret("P"), "c": "X"}
    assert remark_secrets(Secret("p"), Secret("P")) == Secret("P")
    assert remark_secrets("plain", "PLAIN") == "PLAIN"


def test_remark_secrets_makes_a_reshaped_value_secret_whole() -> None:
    assert remark_secrets(["x", Secret("q")], ["x"]) == Secret(["x"])
    assert remark_secrets({"a": Secret("p"), "b": 1}, {"a": "p"}) == Secret({"a": "p"})
    assert remark_secrets({"a": Secret("p")}, "p") == Secret("p")


def test_carry_secrets_keeps_an_echoed_input_secret() -> None:
    inputs = {"password": Secret("p"), "name": "n"}
    outputs = {"password": "p", "name": "n", "id": "i-1"}
    assert carry_secrets(inputs, outputs) == {"password": Secret("p"), "name": "n", "id": "i-1"}


@pytest.mark.parametrize("value", [
    None, "text", 3, 2.5, True, [], {}, [1, "a", None], {"a": {"b": [1, {"c": "d"}]}, "e": [[2.0]]},
])
def test_plain_data_at_every_depth_is_plain(value: Any) -> None:
    assert is_plain(value)


@pytest.mark.parametrize("value", [
    Secret("s"), UNKNOWN, [Secret("s")], {"a": UNKNOWN}, [1, [2, [Secret("deep")]]],
    {"a": [{"b": "plain"}, {"c": UNKNOWN}]}, ("a", "tuple"), [("in", "a list")], {"a": {1, 2}},
])
def test_a_secret_an_unknown_or_another_container_at_any_depth_is_not_plain(value: Any) -> None:
    """Such a value must be resolved, revealed and re-marked, not only copied."""
    assert not is_plain(value)
