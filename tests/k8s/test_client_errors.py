"""How the k8s client classes the API server's answers: what the engine retries and
what fails a step at once. No cluster: the answers are built as lightkube raises them."""

from __future__ import annotations

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import Status

from stackwright.providers.k8s.client import classify


def answer(code: int, reason: str, message: str) -> ApiError:
    return ApiError(status=Status(code=code, reason=reason, message=message))


@pytest.mark.parametrize("message", [
    "failed to create typed patch object (d3/bad; apps/v1, Kind=Deployment): .spec.replica: "
    "field not declared in schema",
    "failed to create typed patch object (d5/g1; d5.example.com/v1, Kind=Gadget): .spec.size: "
    "expected numeric (int or float), got string",
])
def test_a_manifest_that_does_not_fit_the_schema_is_not_retried(message: str) -> None:
    error = classify(answer(500, "InternalError", message), "apply Deployment d3/bad")
    assert not error.retryable
    assert error.message == f"apply Deployment d3/bad: {message}"


@pytest.mark.parametrize(("code", "reason"), [(422, "Invalid"), (400, "BadRequest")])
def test_validation_errors_are_permanent(code: int, reason: str) -> None:
    assert not classify(answer(code, reason, 'ConfigMap "Bad_Name" is invalid'), "apply").retryable


@pytest.mark.parametrize("code", [429, 500, 503])
def test_a_busy_or_failing_server_is_retried(code: int) -> None:
    assert classify(answer(code, "InternalError", "etcdserver: request timed out"), "apply").retryable


def test_an_object_that_is_not_there_is_a_permanent_not_found() -> None:
    from stackwright.errors import NotFoundError

    error = classify(answer(404, "NotFound", 'configmaps "settings" not found'), "patch ConfigMap app/settings")
    assert isinstance(error, NotFoundError) and not error.retryable
    assert error.message == 'patch ConfigMap app/settings: configmaps "settings" not found'
