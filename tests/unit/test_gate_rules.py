"""The staging gate's rules, called in process: which applies of the gating environment
count, and what a refusal tells the user (tests/workflow/test_gate_pause.py drives the
same through the CLI).

The evidence the gate reads is the audit log, so these tests record ``up``/``apply``
events as the engine does and ask the gate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stackwright.errors import ProjectError
from stackwright.program.digest import program_digest
from stackwright.program.project import Project
from stackwright.workflow.gate import GateClosed, GateVerdict, ago, check_gate, describe_time, evaluate_gate
from unit.workflow_projects import session_of, write_project

ENVIRONMENTS: dict[str, Any] = {"staging": {}, "production": {"gate": "staging"}, "dev": {}}
A, B = "a" * 64, "b" * 64


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Stacks production (gated on staging), staging-eu and staging-us (environment
    staging) and dev."""
    staging = {"environment": "staging"}
    return write_project(tmp_path / "proj", ENVIRONMENTS,
                         stacks=["dev", "production", "staging-eu", "staging-us"],
                         stack_files={"staging-eu": staging, "staging-us": staging})


def record(project: Project, stack: str, digest: str, result: str = "succeeded", kind: str = "up",
           **data: Any) -> None:
    with session_of(project, stack, "tester") as s:
        s.store.record_event(stack, kind, "tester", {"result": result, "program_digest": digest, **data})


def refusal(project: Project, digest: str | None = A, stack: str = "production") -> GateClosed:
    with session_of(project, stack, "tester") as s, pytest.raises(GateClosed) as caught:
        check_gate(s, digest)
    return caught.value


def passes(project: Project, digest: str | None = A, stack: str = "production") -> None:
    with session_of(project, stack, "tester") as s:
        check_gate(s, digest)


def test_an_ungated_stack_always_passes(project: Project) -> None:
    passes(project, A, "dev")
    with session_of(project, "dev", "tester") as s:
        verdict = evaluate_gate(project, s.store, "dev", A)
        assert verdict == GateVerdict("dev", "dev", None, A, None) and verdict.passed
        assert evaluate_gate(project, s.store, "dev").program_digest == program_digest(project)


def test_a_gate_that_never_opened_refuses_and_names_a_stack_of_the_gate(project: Project) -> None:
    closed = refusal(project)
    assert closed.message == ("stack 'production' (production) is gated on staging, which has never "
                              f"applied a program successfully; this program is {A[:12]}")
    assert closed.hint == "apply this program to staging first (stackwright up --stack staging-eu), then retry"


def test_the_hint_names_the_environment_when_it_has_no_stack(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", ENVIRONMENTS, stacks=["production"])
    assert refusal(project).hint == "apply this program to staging first (stackwright up --stack staging), then retry"


def test_the_same_program_applied_by_the_gate_passes(project: Project) -> None:
    record(project, "staging-us", A)
    passes(project, A)


def test_another_program_applied_by_the_gate_is_refused(project: Project) -> None:
    record(project, "staging-us", B)
    closed = refusal(project, A)
    assert closed.message.startswith("stack 'production' (production) is gated on staging: staging last "
                                     "succeeded at ")
    assert closed.message.endswith(f" on stack 'staging-us' with program {B[:12]}; this program is {A[:12]}")
    assert closed.hint == "apply this program to staging first (stackwright up --stack staging-us), then retry"


def test_only_the_latest_success_of_the_gate_counts(project: Project) -> None:
    record(project, "staging-eu", A)
    record(project, "staging-us", B, kind="apply")
    assert f"with program {B[:12]}" in refusal(project, A).message
    passes(project, B)


@pytest.mark.parametrize("why", ["failed", "targeted", "rollback", "another environment", "no digest"])
def test_what_does_not_open_the_gate(project: Project, why: str) -> None:
    record(project, "staging-eu", B)
    if why == "failed":
        record(project, "staging-eu", A, result="failed")
    elif why == "targeted":
        record(project, "staging-eu", A, targets=["staging-eu::proj::local:File::site"])
    elif why == "rollback":
        record(project, "staging-eu", A, kind="rollback")
    elif why == "another environment":
        record(project, "dev", A)
    else:
        record(project, "staging-eu", A, program_digest=None)
    closed = refusal(project, A)
    expected = "unknown" if why == "no digest" else B[:12]
    assert f"with program {expected};" in closed.message


def test_a_targeted_update_with_no_targets_counts(project: Project) -> None:
    record(project, "staging-eu", A, targets=[])
    passes(project, A)


def test_the_program_on_disk_is_judged_by_default(project: Project) -> None:
    record(project, "staging-eu", program_digest(project))
    passes(project, None)
    (project.root / "__main__.py").write_text("import stackwright as sw  # edited\n")
    refusal(project, None)


def test_an_environment_gated_on_itself_is_a_project_error(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", {"production": {"gate": "production"}}, stacks=["production"])
    with session_of(project, "production", "t") as s, pytest.raises(ProjectError) as caught:
        check_gate(s, A)
    assert caught.value.message == "environment 'production' is gated on itself"
    assert caught.value.file == str(project.root / "stackwright.yaml")
    assert caught.value.hint == "set `gate:` to the environment that must apply a program first, e.g. staging"


def test_times_are_absolute_and_relative() -> None:
    at = time.mktime((2024, 5, 1, 14, 3, 0, 0, 0, -1))
    assert describe_time(at, now=at + 3 * 3600 + 5) == "at 2024-05-01 14:03 (3h ago)"
    assert describe_time(at, now=at - 100) == "at 2024-05-01 14:03 (0s ago)"
    assert describe_time(time.time() - 120).endswith("(2m ago)")


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s ago"), (59.9, "59s ago"), (60, "1m ago"), (3599, "59m ago"), (3600, "1h ago"),
    (86399, "23h ago"), (86400, "1d ago"), (3 * 86400 + 7200, "3d ago"),
])
def test_ages_are_coarse(seconds: float, shown: str) -> None:
    assert ago(seconds) == shown
