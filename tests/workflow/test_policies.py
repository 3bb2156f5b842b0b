"""Policies: each built-in rule on real plans, enforcement per environment, user
policies in ``policies/*.py``, and `up` refusing a mandatory violation through the CLI."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwright.errors import ProjectError
from stackwright.plan.plan import Op, Plan, Step
from stackwright.plan.planner import make_plan
from stackwright.program.project import Project
from stackwright.providers import local
from stackwright.providers.aws import dynamodb, iam, s3
from stackwright.providers.registry import ProviderRegistry
from stackwright.state.records import ResourceState, Snapshot
from stackwright.testing import declare
from stackwright.workflow.environments import Environment
from stackwright.workflow.policies import (
    PolicyError, Violation, blocking, evaluate, refuse_blocking, with_violations,
)

from cli.conftest import CliProject, project  # noqa: F401  (`project` is a fixture)

BUCKET = "dev::test::aws:s3:Bucket::assets"
TABLE = "dev::test::aws:dynamodb:Table::orders"
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
READ_ONLY = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


# --- helpers -------------------------------------------------------------------------


def recorded(type_token: str, urn: str, **inputs: Any) -> ResourceState:
    """A resource as `up` would have recorded it, inputs checked by its provider."""
    checked = ProviderRegistry().resource(type_token).check(inputs)
    return ResourceState(urn=urn, type=type_token, id=urn.rsplit("::", 1)[-1], inputs=checked,
                         outputs=dict(checked))


def plan_of(program: Callable[[], Any], *records: ResourceState) -> Plan:
    snapshot = Snapshot("dev", "lineage", 3, {r.urn: r for r in records}, {})
    return make_plan(declare(program), snapshot, ProviderRegistry())


def nothing() -> None:
    """A program that declares nothing: every recorded resource is deleted."""


def judge(plan: Plan, tmp_path: Path, allow_destroy: bool = False, **env: Any) -> list[Violation]:
    proj = Project(root=tmp_path, name="test")
    return evaluate(plan, proj, Environment(name="dev", **env), allow_destroy=allow_destroy)


def by_rule(violations: list[Violation], rule: str) -> list[Violation]:
    return [v for v in violations if v.policy == rule]


# --- no-destroy-stateful -------------------------------------------------------------


def test_deleting_a_bucket_is_a_mandatory_violation(tmp_path: Path) -> None:
    plan = plan_of(nothing, recorded("aws:s3:Bucket", BUCKET, bucket="assets"))
    [found] = by_rule(judge(plan, tmp_path), "no-destroy-stateful")
    assert found.mandatory and found.urn == BUCKET
    assert "would be deleted" in found.message and "stateful" in found.message
    assert "--allow-destroy" in found.message
    assert found.subject == "aws:s3:Bucket assets"


def test_allow_destroy_lets_the_delete_through(tmp_path: Path) -> None:
    plan = plan_of(nothing, recorded("aws:s3:Bucket", BUCKET, bucket="assets"))
    assert judge(plan, tmp_path, allow_destroy=True) == []


def test_replacing_a_table_names_the_inputs_that_force_it(tmp_path: Path) -> None:
    old = recorded("aws:dynamodb:Table", TABLE, name="orders", hash_key="id",
                   attributes=[{"name": "id", "type": "S"}])
    plan = plan_of(lambda: dynamodb.Table("orders", name="orders", hash_key="pk",
                                          attributes=[{"name": "pk", "type": "S"}]), old)
    assert plan.steps[0].op is Op.REPLACE
    [found] = by_rule(judge(plan, tmp_path), "no-destroy-stateful")
    assert "replaced" in found.message and "hash_key" in found.message


def test_stateless_deletes_and_retained_deletes_pass(tmp_path: Path) -> None:
    file_urn = "dev::test::local:File::notes"
    kept = recorded("aws:s3:Bucket", BUCKET, bucket="assets")
    kept.retain_on_delete = True
    plan = plan_of(nothing, recorded("local:File", file_urn, path="notes.txt", content="x"), kept)
    assert {s.op for s in plan.steps} == {Op.DELETE}
    assert judge(plan, tmp_path) == []


def test_a_protected_step_is_guarded_even_when_stateless(tmp_path: Path) -> None:
    step = Step(urn="dev::test::local:File::notes", type="local:File", op=Op.DELETE, protect=True)
    plan = Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=(step,))
    [found] = judge(plan, tmp_path)
    assert found.policy == "no-destroy-stateful" and "protected" in found.message


# --- required-tags -------------------------------------------------------------------


def test_required_tags_are_checked_on_taggable_resources_only(tmp_path: Path) -> None:
    def program() -> None:
        s3.Bucket("assets", bucket="assets", tags={"team": "web", "env": ""})
        local.File("notes", path="notes.txt", content="x")

    found = by_rule(judge(plan_of(program), tmp_path, required_tags=["team", "env"]), "required-tags")
    assert [(v.urn, v.message, v.mandatory) for v in found] == [
        (BUCKET, "lacks required tag(s): env", False)]


def test_required_tags_can_be_made_mandatory(tmp_path: Path) -> None:
    plan = plan_of(lambda: s3.Bucket("assets", bucket="assets"))
    found = judge(plan, tmp_path, required_tags=["team"], policies={"required-tags": "mandatory"})
    assert [v.mandatory for v in by_rule(found, "required-tags")] == [True]
    assert blocking(found) == found


def test_unchanged_resources_are_not_rejudged(tmp_path: Path) -> None:
    plan = plan_of(lambda: s3.Bucket("assets", bucket="assets"),
                   recorded("aws:s3:Bucket", BUCKET, bucket="assets"))
    assert plan.steps[0].op is Op.SAME
    assert judge(plan, tmp_path, required_tags=["team"]) == []


# --- no-public-bucket ----------------------------------------------------------------


def public_policy(**extra: Any) -> dict[str, Any]:
    statement = {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::assets/*", **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize(("inputs", "expected"), [
    ({"block_public_access": False}, ["does not block public access (block_public_access=False)"]),
    ({"policy": public_policy()}, ["bucket policy statement 'Public' allows Principal \"*\" without a Condition"]),
    ({"policy": public_policy(Principal={"AWS": ["*"]})},
     ["bucket policy statement 'Public' allows Principal \"*\" without a Condition"]),
    ({"policy": public_policy(Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}})}, []),
    ({"policy": public_policy(Effect="Deny")}, []),
    ({}, []),
])
def test_public_buckets(tmp_path: Path, inputs: dict[str, Any], expected: list[str]) -> None:
    plan = plan_of(lambda: s3.Bucket("assets", bucket="assets", **inputs))
    assert [v.message for v in by_rule(judge(plan, tmp_path), "no-public-bucket")] == expected


def test_public_bucket_enforcement_follows_the_environment(tmp_path: Path) -> None:
    plan = plan_of(lambda: s3.Bucket("assets", bucket="assets", block_public_access=False))
    assert [v.mandatory for v in judge(plan, tmp_path)] == [False]
    assert [v.mandatory for v in judge(plan, tmp_path, policies={"no-public-bucket": "mandatory"})] == [True]
    assert judge(plan, tmp_path, policies={"no-public-bucket": "off"}) == []


# --- no-admin-policy -----------------------------------------------------------------


@pytest.mark.parametrize(("program", "expected"), [
    (lambda: iam.Policy("admin", name="admin", policy=ADMIN), "policy statement 1"),
    (lambda: iam.RolePolicy("inline", role="app", name="inline", policy={
        "Version": "2012-10-17",
        "Statement": {"Sid": "All", "Effect": "Allow", "Action": ["*"], "Resource": ["*"]}}),
     "policy statement 'All'"),
    (lambda: iam.Role("app", name="app", assume_role_policy={
        "Version": "2012-10-17", "Statement": [TRUST["Statement"][0], ADMIN["Statement"][0]]}),
     "assume_role_policy statement 2"),
])
def test_admin_documents_are_found(tmp_path: Path, program: Callable[[], Any], expected: str) -> None:
    [found] = by_rule(judge(plan_of(program), tmp_path), "no-admin-policy")
    assert found.message == f"{expected} allows every action (\"Action\": \"*\") on every resource"
    assert not found.mandatory


def test_scoped_documents_pass(tmp_path: Path) -> None:
    def program() -> None:
        iam.Policy("read", name="read", policy=READ_ONLY)
        iam.Role("app", name="app", assume_role_policy=TRUST)
        iam.Policy("deny", name="deny", policy={"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "*", "Resource": "*"}]})

    assert judge(plan_of(program), tmp_path) == []


# --- configuration and output --------------------------------------------------------


def test_a_misspelt_policy_name_in_the_environment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as caught:
        judge(plan_of(nothing), tmp_path, policies={"required-tag": "mandatory"})
    assert "unknown policy 'required-tag'" in caught.value.message
    assert "required-tags" in (caught.value.hint or "")


def test_refusal_names_the_first_violation_and_the_way_out(tmp_path: Path) -> None:
    plan = plan_of(nothing, recorded("aws:s3:Bucket", BUCKET, bucket="assets"))
    found = judge(plan, tmp_path)
    with pytest.raises(PolicyError) as caught:
        refuse_blocking(found)
    assert "1 mandatory policy violation(s)" in caught.value.message
    assert "--allow-destroy" in (caught.value.hint or "")
    refuse_blocking([Violation("x", "advisory only", mandatory=False)])  # does not raise


def test_plan_json_carries_the_violations(tmp_path: Path) -> None:
    plan = plan_of(lambda: s3.Bucket("assets", bucket="assets", block_public_access=False))
    data = json.loads(json.dumps(with_violations(plan, judge(plan, tmp_path))))
    assert data["schema"] == 1 and data["steps"][0]["urn"] == BUCKET
    assert data["violations"] == [{
        "policy": "no-public-bucket", "enforcement": "advisory", "urn": BUCKET,
        "message": "does not block public access (block_public_access=False)"}]


# --- user policies -------------------------------------------------------------------


def write_policy(root: Path, text: str, name: str = "guard.py") -> Path:
    path = root / "policies" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


GUARD = """\
import stackwright as sw


def _files(plan):
    return [s for s in plan.steps if s.type == "local:File"]


@sw.policy
def no_private_files(plan):
    for step in _files(plan):
        if step.inputs["mode"] == 0o600:
            yield sw.Violation("private files are not allowed", urn=step.urn)


@sw.policy(name="note-everything", enforcement="advisory")
def notes(plan):
    return f"{len(plan.steps)} step(s)"


def policy_no_tmp(plan):
    return [{"message": "no /tmp", "urn": s.urn} for s in _files(plan) if s.inputs["path"].startswith("/tmp")]
"""


def files_plan() -> Plan:
    def program() -> None:
        local.File("secret", path="secret.txt", content="x", mode=0o600)
        local.File("scratch", path="/tmp/scratch.txt", content="x")

    return plan_of(program)


def test_user_policies_are_found_and_enforced(tmp_path: Path) -> None:
    write_policy(tmp_path, GUARD)
    found = judge(files_plan(), tmp_path)
    assert [(v.policy, v.message, v.urn, v.mandatory) for v in found] == [
        ("no_private_files", "private files are not allowed", "dev::test::local:File::secret", True),
        ("note-everything", "2 step(s)", None, False),
        ("policy_no_tmp", "no /tmp", "dev::test::local:File::scratch", True),
    ]


def test_the_environment_sets_user_policy_enforcement(tmp_path: Path) -> None:
    write_policy(tmp_path, GUARD)
    found = judge(files_plan(), tmp_path, policies={
        "no_private_files": "advisory", "note-everything": "mandatory", "policy_no_tmp": "off"})
    assert [(v.policy, v.mandatory) for v in found] == [("no_private_files", False), ("note-everything", True)]


def test_a_user_policy_cannot_change_the_plan(tmp_path: Path) -> None:
    """The plan is a value: trying to change it is an error naming the policy's line."""
    write_policy(tmp_path, """\
        def policy_meddle(plan):
            plan.steps[0].inputs["content"] = "changed"
    """)
    plan = files_plan()
    with pytest.raises(PolicyError) as caught:
        judge(plan, tmp_path)
    assert caught.value.message.startswith(
        "policy 'policy_meddle' raised TypeError: a plan's mappings cannot be changed")
    assert (caught.value.file, caught.value.line) == ("policies/guard.py", 2)
    assert plan.steps[0].inputs is not None and plan.steps[0].inputs["content"] == "x"


def test_an_exception_in_a_user_policy_names_its_file_and_line(tmp_path: Path) -> None:
    write_policy(tmp_path, """\
        import stackwright as sw


        @sw.policy
        def broken(plan):
            limits = {}
            return limits["files"]
    """)
    with pytest.raises(PolicyError) as caught:
        judge(files_plan(), tmp_path)
    error = caught.value
    assert (error.file, error.line) == ("policies/guard.py", 7)
    assert error.message == "policy 'broken' raised KeyError: 'files'"
    assert str(error).startswith("policies/guard.py:7: policy 'broken' raised KeyError")


def test_a_wrong_return_value_is_explained(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_count(plan):\n    return 42\n")
    with pytest.raises(PolicyError) as caught:
        judge(files_plan(), tmp_path)
    assert (caught.value.file, caught.value.line) == ("policies/guard.py", 1)
    assert "gave int 42, not a violation" in caught.value.message
    assert "sw.Violation" in (caught.value.hint or "")


def test_a_broken_policy_file_names_the_line(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_x(plan):\n    return [\n")
    with pytest.raises(PolicyError) as caught:
        judge(files_plan(), tmp_path)
    assert caught.value.file == "policies/guard.py" and caught.value.line is not None
    assert caught.value.message.startswith("syntax error")

    write_policy(tmp_path, "import no_such_module_here\n")
    with pytest.raises(PolicyError) as caught:
        judge(files_plan(), tmp_path)
    assert (caught.value.file, caught.value.line) == ("policies/guard.py", 1)
    assert "ModuleNotFoundError" in caught.value.message


def test_a_user_policy_may_not_take_a_built_in_name(tmp_path: Path) -> None:
    write_policy(tmp_path, "import stackwright as sw\n\n@sw.policy(name='required-tags')\ndef mine(plan):\n    pass\n")
    with pytest.raises(PolicyError, match="already used"):
        judge(files_plan(), tmp_path)


# --- through the real CLI ------------------------------------------------------------

PROGRAM = """\
local.File("page", path="out/page.html", content="<h1>hi</h1>")
local.File("key", path="out/key.pem", content="secret", mode=0o600)
"""

FORBID_PRIVATE = """\
import stackwright as sw


@sw.policy
def no_private_files(plan):
    \"\"\"Everything we serve must be readable.\"\"\"
    for step in plan.steps:
        if step.type == "local:File" and step.inputs and step.inputs.get("mode") == 0o600:
            yield sw.Violation("mode 0600 is not allowed here", urn=step.urn)
"""


def with_environment(proj: CliProject, **dev: Any) -> None:
    path = proj.file("stackwright.yaml")
    settings = yaml.safe_load(path.read_text())
    settings["environments"] = {"dev": dev}
    path.write_text(yaml.safe_dump(settings))


@pytest.fixture
def guarded(project: Callable[..., CliProject]) -> CliProject:  # noqa: F811
    proj = project(PROGRAM)
    write_policy(proj.root, FORBID_PRIVATE)
    return proj


def test_a_mandatory_violation_blocks_up_and_changes_nothing(guarded: CliProject) -> None:
    preview = guarded.ok("preview")
    assert "mandatory no_private_files [local:File key]: mode 0600 is not allowed here" in preview
    assert "1 mandatory violation(s) will block `up`." in preview

    err = guarded.fails("up", "--yes")
    assert "error: 1 mandatory policy violation(s) block this change: no_private_files" in err
    assert not guarded.file("out").exists()
    assert guarded.ok("state", "ls").startswith("0 resources, serial 0")
    assert "No checkpoints yet." in guarded.ok("history")

    with_environment(guarded, policies={"no_private_files": "off"})
    assert "Policy violations" not in guarded.ok("up", "--yes")  # and the lock was released
    assert guarded.file("out/key.pem").exists()


FORBID_DELETES = """\
import stackwright as sw


@sw.policy
def keep_everything(plan):
    for step in plan.steps:
        if step.op.value == "delete":
            yield sw.Violation("nothing may be deleted", urn=step.urn)
"""


def test_a_refused_destroy_names_destroy_as_what_its_violations_block(project: Callable[..., CliProject]) -> None:  # noqa: F811
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    write_policy(proj.root, FORBID_DELETES)
    code, out, err = proj.run("destroy", "--yes")
    assert code == 1 and "error: 2 mandatory policy violation(s) block this change: keep_everything" in err
    assert "2 mandatory violation(s) will block `destroy`." in out and "block `up`" not in out
    assert proj.file("out/page.html").exists()


def test_an_advisory_violation_only_warns(guarded: CliProject) -> None:
    with_environment(guarded, policies={"no_private_files": "advisory"})
    out = guarded.ok("up", "--yes")
    assert "advisory  no_private_files [local:File key]: mode 0600 is not allowed here" in out
    assert "Advisory only" in out
    assert guarded.file("out/key.pem").exists()


def test_preview_formats_carry_the_violations(guarded: CliProject) -> None:
    data = json.loads(guarded.ok("preview", "--format", "json"))
    assert data["violations"] == [{"policy": "no_private_files", "enforcement": "mandatory",
                                   "message": "mode 0600 is not allowed here",
                                   "urn": guarded.urn("local:File", "key")}]
    assert json.loads(guarded.ok("preview", "--json")) == data
    markdown = guarded.ok("preview", "--format", "markdown")
    assert markdown.startswith("<!-- stackwright:plan -->")
    assert "❌ **mandatory** `no_private_files`" in markdown


def test_an_error_in_a_user_policy_is_a_clear_cli_error(guarded: CliProject) -> None:
    write_policy(guarded.root, "def policy_broken(plan):\n    return 1 / 0\n")
    err = guarded.fails("preview")
    assert "policies/guard.py:2: policy 'policy_broken' raised ZeroDivisionError: division by zero" in err
    assert "Traceback" not in err


def test_a_user_policy_that_exits_fails_the_check_instead_of_ending_the_command(guarded: CliProject) -> None:
    """``sys.exit(0)`` in a policy once ended `preview` and `up` at once with status 0 and
    nothing printed: a check that passed, to a CI job."""
    write_policy(guarded.root, "import sys\n\ndef policy_done(plan):\n    sys.exit(0)\n")
    for command in (("preview",), ("up", "--yes")):
        err = guarded.fails(*command)
        assert "policies/guard.py:4: policy 'policy_done' called exit(0)" in err
    assert not guarded.file("out").exists()
    write_policy(guarded.root, "import sys\nsys.exit('not today')\n")
    assert "policies/guard.py:2: loading the policy file called exit('not today')" in guarded.fails("preview")
