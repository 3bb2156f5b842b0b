"""An update or a delete whose object the provider did not find (deleted outside
Stackwright) fails with the way out: refresh records that it is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackwright.errors import NotFoundError, ProviderError
from unit.fakes import Thing
from unit.test_engine import P, Harness


@pytest.fixture(params=["parallel", "in-line"])
def h(tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    return Harness(tmp_path, inline=request.param == "in-line")


def _answers(error: ProviderError) -> Any:
    def call(*args: Any) -> Any:
        raise error
    return call


@pytest.mark.parametrize("action", ["update", "delete"])
def test_an_object_not_found_on_update_or_delete_fails_with_the_refresh_hint(h: Harness, action: str) -> None:
    assert h.up(lambda: Thing("a", label="x")).ok
    setattr(h.providers.thing, action, _answers(NotFoundError("InvalidGroup.NotFound: sg-1 does not exist")))

    result = h.up((lambda: Thing("a", label="y")) if action == "update" else (lambda: None))

    [failure] = result.failures
    assert failure.urn == P + "a" and failure.action == action and "InvalidGroup.NotFound" in failure.message
    assert failure.hint is not None and "`stackwright refresh --yes`" in failure.hint
    assert "`stackwright up --refresh`" in failure.hint


def test_other_failures_and_creates_get_no_such_hint(h: Harness) -> None:
    h.providers.thing.create = _answers(NotFoundError("InvalidVpcID.NotFound"))  # type: ignore[method-assign]
    assert h.up(lambda: Thing("a")).failures[0].hint is None
    h.providers.thing = type(h.providers.thing)()
    assert h.up(lambda: Thing("a", label="x")).ok
    h.providers.thing.fail_update.add("a")
    assert h.up(lambda: Thing("a", label="y")).failures[0].hint is None


@pytest.mark.parametrize(("code", "gone"), [
    ("InvalidGroup.NotFound", True), ("NoSuchBucket", True), ("ResourceNotFoundException", True),
    ("InvalidParameterValue", False), ("Throttling", False),
])
def test_aws_answers_that_an_object_is_not_there_are_not_found_errors(code: str, gone: bool) -> None:
    from botocore.exceptions import ClientError

    from stackwright.providers.aws.base import classify

    error = classify(ClientError({"Error": {"Code": code, "Message": "The thing 'x-1' does not exist"}},
                                 "UpdateThing"), "update x-1")
    assert isinstance(error, NotFoundError) is gone
    assert error.message == f"update x-1: {code}: The thing 'x-1' does not exist"
