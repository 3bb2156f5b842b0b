"""Policies, the rules tests/workflow/test_policies.py leaves out: how a refusal reads,
how each rule's enforcement is chosen, and every way a user policy can be written,
misnamed or broken."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from stackwright.errors import ProjectError, StackwrightError
from stackwright.model.values import UNKNOWN, Secret
from stackwright.plan.plan import Op, Plan, Step
from stackwright.program.project import Project
from stackwright.providers.aws import s3
from stackwright.workflow.environments import Environment
from stackwright.workflow.policies import (
    PolicyError, Violation, evaluate, refuse_blocking, rules_for, user_rules,
)
from workflow.test_policies import BUCKET, by_rule, judge, nothing, plan_of, recorded

FILE = "dev::test::local:File::notes"


def write_policy(root: Path, text: str, name: str = "guard.py") -> None:
    path = root / "policies" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text))


def step(op: Op, urn: str = FILE, type_token: str = "local:File", **fields: Any) -> Step:
    return Step(urn=urn, type=type_token, op=op, **fields)


def plan(*steps: Step) -> Plan:
    return Plan(stack="dev", project="test", lineage="l", base_serial=1, steps=steps)


def messages(found: list[Violation]) -> list[tuple[str, str, str | None, bool]]:
    return [(v.policy, v.message, v.urn, v.mandatory) for v in found]


# --- violations and refusals ---------------------------------------------------------


def test_a_violation_names_its_resource_for_people() -> None:
    assert Violation("p", "m", BUCKET).subject == "aws:s3:Bucket assets"
    assert Violation("p", "m", "odd::urn").subject == "odd::urn"
    assert Violation("p", "m").subject is None
    assert Violation("p", "m", mandatory=False).enforcement == "advisory"
    assert Violation("p", "m").enforcement == "mandatory"


def test_a_refusal_counts_the_blocking_violations_only() -> None:
    found = [Violation("style", "advisory", mandatory=False), Violation("a", "first"),
             Violation("b", "second"), Violation("c", "third")]
    with pytest.raises(PolicyError) as caught:
        refuse_blocking(found)
    assert caught.value.message == "3 mandatory policy violation(s) block this change: a: first (and 2 more)"
    assert caught.value.hint == ("fix the resources, or make the policy advisory for this environment in "
                                 "stackwright.yaml")
    with pytest.raises(PolicyError) as caught:
        refuse_blocking([Violation("a", "only")])
    assert caught.value.message == "1 mandatory policy violation(s) block this change: a: only"
    with pytest.raises(PolicyError) as caught:
        refuse_blocking([Violation("a", "one"), Violation("b", "two")])
    assert caught.value.message == "2 mandatory policy violation(s) block this change: a: one (and 1 more)"


def test_a_refused_delete_says_how_to_mean_it() -> None:
    with pytest.raises(PolicyError) as caught:
        refuse_blocking([Violation("a", "x"), Violation("no-destroy-stateful", "y")])
    assert caught.value.hint == "pass --allow-destroy if you mean it"


# --- no-destroy-stateful -------------------------------------------------------------


def test_a_stateful_delete_says_what_is_lost(tmp_path: Path) -> None:
    found = judge(plan_of(nothing, recorded("aws:s3:Bucket", BUCKET, bucket="assets")), tmp_path)
    assert messages(found) == [("no-destroy-stateful", "would be deleted; it is stateful: deleting it loses "
                                "its data (pass --allow-destroy if you mean it)", BUCKET, True)]


def test_a_protected_stateful_replace_names_both_reasons_and_the_keys(tmp_path: Path) -> None:
    replaced = step(Op.REPLACE, BUCKET, "aws:s3:Bucket", protect=True, replace_keys=("bucket", "region"))
    unkeyed = step(Op.REPLACE, protect=True)
    found = judge(plan(replaced, unkeyed), tmp_path)
    assert [v.message for v in found] == [
        "would be replaced (deleted and created anew) because bucket, region changed; it is protected and "
        "stateful: deleting it loses its data (pass --allow-destroy if you mean it)",
        "would be replaced (deleted and created anew); it is protected (pass --allow-destroy if you mean it)"]


def test_creates_updates_and_unknown_types_are_not_guarded(tmp_path: Path) -> None:
    steps = [step(Op.CREATE, protect=True, inputs={}), step(Op.UPDATE, BUCKET, "aws:s3:Bucket", inputs={}),
             step(Op.DELETE, "dev::test::no:Such::x", "no:Such")]
    assert judge(plan(*steps), tmp_path) == []


def test_a_retained_delete_passes_even_when_protected(tmp_path: Path) -> None:
    assert judge(plan(step(Op.DELETE, protect=True, retain_on_delete=True)), tmp_path) == []
    after = step(Op.DELETE, "dev::test::local:File::after", protect=True)
    [found] = judge(plan(step(Op.DELETE, protect=True, retain_on_delete=True), after), tmp_path)
    assert found.urn == after.urn
    [found] = judge(plan(step(Op.REPLACE, protect=True, retain_on_delete=True)), tmp_path)
    assert found.urn == FILE


# --- required-tags -------------------------------------------------------------------


@pytest.mark.parametrize(("tags", "missing"), [
    ({"team": "web"}, "env"), ({}, "team, env"), ("not-a-mapping", "team, env"), ({"team": None, "env": "x"}, "team"),
    ({"team": "", "env": ""}, "team, env"), ({"team": "a", "env": "b"}, None), (UNKNOWN, None), (Secret({}), None),
])
def test_required_tags(tmp_path: Path, tags: Any, missing: str | None) -> None:
    tagged = step(Op.UPDATE, BUCKET, "aws:s3:Bucket", inputs={"bucket": "assets", "tags": tags})
    found = judge(plan(tagged), tmp_path, required_tags=["team", "env"])
    assert messages(found) == ([] if missing is None else [
        ("required-tags", f"lacks required tag(s): {missing}", BUCKET, False)])


def test_required_tags_judge_creates_and_replaces_but_not_deletes(tmp_path: Path) -> None:
    steps = [step(op, f"dev::test::aws:s3:Bucket::{op.value}", "aws:s3:Bucket", inputs={"tags": {}})
             for op in (Op.CREATE, Op.REPLACE)]
    steps.append(step(Op.DELETE, "dev::test::aws:s3:Bucket::gone", "aws:s3:Bucket", inputs={"tags": {}}))
    steps.append(step(Op.CREATE, "dev::test::aws:s3:Bucket::none", "aws:s3:Bucket"))
    steps.insert(0, step(Op.CREATE, "dev::test::aws:s3:Bucket::unknown", "aws:s3:Bucket", inputs={"tags": UNKNOWN}))
    steps.insert(0, step(Op.CREATE, "dev::test::local:File::untaggable", inputs={"path": "x"}))
    found = judge(plan(*steps), tmp_path, required_tags=["team"], allow_destroy=True)
    assert [v.urn for v in found] == ["dev::test::aws:s3:Bucket::create", "dev::test::aws:s3:Bucket::replace"]


def test_no_required_tags_means_no_objection(tmp_path: Path) -> None:
    assert judge(plan(step(Op.CREATE, BUCKET, "aws:s3:Bucket", inputs={"tags": {}})), tmp_path) == []


# --- enforcement ---------------------------------------------------------------------


def test_provider_rules_judge_only_their_types(tmp_path: Path) -> None:
    public = {"bucket": "assets", "block_public_access": False}
    steps = [step(Op.CREATE, "dev::test::local:File::b", "local:File", inputs=public),
             step(Op.CREATE, BUCKET, "aws:s3:Bucket", inputs=public)]
    assert [v.urn for v in judge(plan(*steps), tmp_path)] == [BUCKET]


def test_an_environment_naming_a_provider_rule_loads_it_for_any_plan(tmp_path: Path) -> None:
    assert judge(plan(step(Op.CREATE, inputs={})), tmp_path, policies={"no-public-bucket": "mandatory"}) == []


def test_a_misspelt_policy_name_names_the_project_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as caught:
        judge(plan_of(nothing), tmp_path, policies={"zz-typo": "mandatory", "aa-typo": "off"})
    assert caught.value.message == "environment 'dev' configures unknown policy 'aa-typo'"
    assert caught.value.file == str(tmp_path / "stackwright.yaml")
    assert caught.value.hint is not None and caught.value.hint.startswith("known policies: no-admin-policy, ")


def test_a_rule_set_off_is_not_run(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_boom(plan):\n    raise RuntimeError('ran')\n")
    assert judge(plan(step(Op.CREATE, inputs={})), tmp_path, policies={"policy_boom": "off"}) == []


def test_the_default_registry_tells_stateful_types(tmp_path: Path) -> None:
    bucket = plan_of(nothing, recorded("aws:s3:Bucket", BUCKET, bucket="assets"))
    proj = Project(root=tmp_path, name="test")
    assert [v.policy for v in evaluate(bucket, proj, Environment(name="dev"))] == ["no-destroy-stateful"]


def test_a_user_policy_may_not_take_a_provider_rules_name(tmp_path: Path) -> None:
    write_policy(tmp_path, "import stackwright as sw\n\n@sw.policy(name='no-public-bucket')\ndef mine(plan):\n    pass\n")
    with pytest.raises(PolicyError) as caught:
        judge(plan(step(Op.CREATE, BUCKET, "aws:s3:Bucket", inputs={})), tmp_path)
    assert caught.value.message == ("policies/guard.py:3: policy name 'no-public-bucket' is already used "
                                    "(provider aws)")


def test_provider_rules_keep_their_default_and_description(tmp_path: Path) -> None:
    rules = {r.name: r for r in rules_for(Project(root=tmp_path, name="test"), ["aws"])}
    public = rules["no-public-bucket"]
    assert (public.default, public.origin) == ("advisory", "provider aws")
    assert public.about and public.about != "no-public-bucket"


def test_rules_in_order_built_in_then_providers_then_the_projects(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_b(plan):\n    pass\n", "b.py")
    write_policy(tmp_path, "def policy_a(plan):\n    pass\n", "a.py")
    names = [r.name for r in rules_for(Project(root=tmp_path, name="test"), ["aws"])]
    assert names[:2] == ["no-destroy-stateful", "required-tags"]
    assert names[-2:] == ["policy_a", "policy_b"]
    assert "no-public-bucket" in names
    assert "no-public-bucket" not in [r.name for r in rules_for(Project(root=tmp_path, name="test"), ["local"])]


# --- user policies -------------------------------------------------------------------


def test_helpers_imports_and_other_files_are_not_policies(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_helper(plan):\n    return 'from a helper file'\n", "_shared.py")
    write_policy(tmp_path, "def policy_text(plan):\n    return 'not python'\n", "notes.txt")
    write_policy(tmp_path, """\
        import stackwright as sw
        from os.path import join as policy_join
        from policies._shared import policy_helper

        LIMIT = 3
        policy_constant = "not a function"


        def helper(plan):
            return "not a policy"


        def policy_real(plan):
            '''Only this one.

            More words.'''
            return policy_helper(plan)
    """)
    [rule] = user_rules(Project(root=tmp_path, name="test"))
    assert (rule.name, rule.default, rule.about, rule.origin) == ("policy_real", "mandatory", "Only this one.",
                                                                  "policies/guard.py:13")


def test_a_helper_a_policy_imports_is_compiled_from_its_source(tmp_path: Path) -> None:
    """Not from ``__pycache__``, which the program digest does not cover (program/runner.py)."""
    import importlib.util
    import py_compile

    write_policy(tmp_path, "def policy_helper(plan):\n    return 'blocked'\n", "_shared.py")
    write_policy(tmp_path, "from policies._shared import policy_helper\n\n\n"
                           "def policy_real(plan):\n    return policy_helper(plan)\n")
    forged = tmp_path / "forged.py"
    forged.write_text("def policy_helper(plan):\n    return None\n")
    py_compile.compile(str(forged), cfile=importlib.util.cache_from_source(str(tmp_path / "policies" / "_shared.py")),
                       doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    assert messages(by_rule(judge(plan(), tmp_path), "policy_real")) == [("policy_real", "blocked", None, True)]


def test_a_policy_without_a_docstring_has_no_description(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_bare(plan):\n    pass\n")
    [rule] = user_rules(Project(root=tmp_path, name="test"))
    assert rule.about == ""


def test_no_policy_folder_means_no_user_policies(tmp_path: Path) -> None:
    assert user_rules(Project(root=tmp_path, name="test")) == []
    (tmp_path / "policies").write_text("a file, not a folder")
    assert user_rules(Project(root=tmp_path, name="test")) == []


def test_a_user_policy_may_not_reuse_another_files_name(tmp_path: Path) -> None:
    write_policy(tmp_path, "import stackwright as sw\n\n@sw.policy(name='same')\ndef one(plan):\n    pass\n", "a.py")
    write_policy(tmp_path, "import stackwright as sw\n\n\n@sw.policy(name='same')\ndef two(plan):\n    pass\n", "b.py")
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert caught.value.message == "policies/b.py:4: policy name 'same' is already used (policies/a.py:3)"
    assert caught.value.hint == "rename the function or pass @sw.policy(name=...)"


def test_a_built_in_name_is_named_as_such(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_x(plan):\n    pass\n")
    (tmp_path / "policies" / "guard.py").write_text(
        "import stackwright as sw\n\n@sw.policy(name='required-tags')\ndef mine(plan):\n    pass\n")
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert caught.value.message == "policies/guard.py:3: policy name 'required-tags' is already used (built-in)"


ANSWERS = """\
import stackwright as sw


class Note:
    def __init__(self, message, urn=None):
        self.message, self.urn = message, urn


def policy_none(plan):
    return None


def policy_text(plan):
    return "one line"


def policy_finding(plan):
    return sw.Violation("a finding", urn="dev::test::local:File::notes")


def policy_mapping(plan):
    return {"message": "a mapping", "urn": "dev::test::local:File::notes"}


def policy_object(plan):
    return Note("an object")


def policy_many(plan):
    yield "first"
    yield {"message": "second"}
    yield Note("third", "dev::test::local:File::notes")
"""


def test_every_way_a_user_policy_may_answer(tmp_path: Path) -> None:
    write_policy(tmp_path, ANSWERS)
    found = judge(plan(step(Op.CREATE, inputs={})), tmp_path)
    assert [(v.policy, v.message, v.urn) for v in found] == [
        ("policy_text", "one line", None),
        ("policy_finding", "a finding", FILE),
        ("policy_mapping", "a mapping", FILE),
        ("policy_object", "an object", None),
        ("policy_many", "first", None), ("policy_many", "second", None), ("policy_many", "third", FILE),
    ]


@pytest.mark.parametrize(("answer", "shown"), [
    ("42", "gave int 42"),
    ("[{'urn': 'x'}]", "gave dict {'urn': 'x'}"),
    ("[{'message': 'm', 'urn': 7}]", "gave dict {'message': 'm', 'urn': 7}"),
    ("[{'message': 1}]", "gave dict {'message': 1}"),
    ("[('x' * 100,)]", "gave tuple ('" + "x" * 55 + "..."),
])
def test_a_wrong_answer_is_explained(tmp_path: Path, answer: str, shown: str) -> None:
    write_policy(tmp_path, f"\n\ndef policy_odd(plan):\n    return {answer}\n")
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert caught.value.message.startswith(f"policy 'policy_odd' {shown}")
    assert caught.value.message.endswith(", not a violation")
    assert (caught.value.file, caught.value.line) == ("policies/guard.py", 3)
    assert caught.value.hint == ("return or yield strings or sw.Violation(message, urn=...); return nothing "
                                 "when all is well")


def test_a_long_wrong_answer_is_cut_short(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_odd(plan):\n    return 10 ** 70\n")
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert caught.value.message == f"policy 'policy_odd' gave int {str(10 ** 70)[:57]}..., not a violation"
    write_policy(tmp_path, "def policy_odd(plan):\n    return 10 ** 60\n")
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert caught.value.message == f"policy 'policy_odd' gave int {str(10 ** 60)[:57]}..., not a violation"
    write_policy(tmp_path, "def policy_odd(plan):\n    return 10 ** 59\n")
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert caught.value.message == f"policy 'policy_odd' gave int {10 ** 59}, not a violation"


def test_our_own_errors_from_a_policy_pass_through(tmp_path: Path) -> None:
    write_policy(tmp_path, """\
        from stackwright.errors import StackwrightError

        def policy_refuses(plan):
            raise StackwrightError("refused by the policy itself", hint="as written")
    """)
    with pytest.raises(StackwrightError) as caught:
        judge(plan(), tmp_path)
    assert type(caught.value) is StackwrightError and caught.value.hint == "as written"


def test_an_error_in_a_policy_says_how_to_get_past_it(tmp_path: Path) -> None:
    write_policy(tmp_path, "def policy_boom(plan):\n    raise RuntimeError('broken')\n")
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert caught.value.message == "policy 'policy_boom' raised RuntimeError: broken"
    assert caught.value.hint == ("fix the policy, or set it to `off` for this environment; --debug shows the "
                                 "traceback")


def test_an_error_while_loading_names_the_line_and_the_fix(tmp_path: Path) -> None:
    write_policy(tmp_path, """\
        LIMITS = {}


        def helper():
            return LIMITS["files"]


        helper()
    """)
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert (caught.value.file, caught.value.line) == ("policies/guard.py", 5)
    assert caught.value.message == "loading the policy file raised KeyError: 'files'"
    assert caught.value.hint == ("fix the policy, or set it to `off` for this environment; --debug shows the "
                                 "traceback")


def test_our_own_errors_while_loading_pass_through(tmp_path: Path) -> None:
    write_policy(tmp_path, "from stackwright.errors import StackwrightError\nraise StackwrightError('no')\n")
    with pytest.raises(StackwrightError) as caught:
        judge(plan(), tmp_path)
    assert type(caught.value) is StackwrightError and caught.value.message == "no"


def test_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    write_policy(tmp_path, "x = 1\ndef policy_x(plan)\n    pass\n")
    with pytest.raises(PolicyError) as caught:
        judge(plan(), tmp_path)
    assert (caught.value.file, caught.value.line, caught.value.message) == (
        "policies/guard.py", 2, "syntax error: expected ':'")
    assert caught.value.hint == "fix the policy file and run the command again"


def test_a_policy_file_imports_the_projects_own_modules(tmp_path: Path) -> None:
    (tmp_path / "limits.py").write_text("MAX = 0\n")
    write_policy(tmp_path, "import limits\n\ndef policy_max(plan):\n    return ['too many'] if len(plan.steps) > "
                           "limits.MAX else []\n")
    assert [v.message for v in judge(plan(step(Op.CREATE, inputs={})), tmp_path)] == ["too many"]


def test_a_dataclass_in_a_policy_file_works(tmp_path: Path) -> None:
    write_policy(tmp_path, """\
        from dataclasses import dataclass


        @dataclass
        class Finding:
            message: str


        def policy_dc(plan):
            return Finding("from a dataclass")
    """)
    assert [v.message for v in judge(plan(), tmp_path)] == ["from a dataclass"]


HINTS = """\
from __future__ import annotations

import typing
from dataclasses import dataclass

Text = str


@dataclass
class Finding:
    message: Text


def policy_hints(plan):
    return Finding(typing.get_type_hints(Finding)["message"].__name__)
"""


def test_a_policy_module_stays_importable_by_name_while_policies_run(tmp_path: Path) -> None:
    """Type hints, dataclasses and the like look a policy's module up by its name."""
    write_policy(tmp_path, HINTS)
    assert [v.message for v in judge(plan(), tmp_path)] == ["str"]


def test_the_bucket_helper_plans_are_judged(tmp_path: Path) -> None:
    bucket = plan_of(lambda: s3.Bucket("assets", bucket="assets", tags={"team": "x"}))
    assert judge(bucket, tmp_path, required_tags=["team"]) == []
