"""Plans as Markdown for pull requests: a reviewed snapshot, secrets, truncation."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import stackwright as sw
from stackwright.model.values import wrap_secret_keys
from stackwright.plan.plan import Op, Plan, Step
from stackwright.plan.planner import make_plan
from stackwright.program.project import Project
from stackwright.providers import local, random
from stackwright.providers.aws import iam, s3
from stackwright.providers.registry import ProviderRegistry
from stackwright.state.records import ResourceState, Snapshot
from stackwright.testing import declare
from stackwright.workflow.environments import Environment
from stackwright.workflow.markdown import GITHUB_COMMENT_LIMIT, render_plan, render_stacks
from stackwright.workflow.policies import Violation, evaluate

SNAPSHOTS = Path(__file__).parent / "snapshots"
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def recorded(stack: str, type_token: str, name: str, secrets: frozenset[str] = frozenset(),
             **inputs: Any) -> ResourceState:
    """A resource as `up` records it: checked inputs, the ``secrets`` keys wrapped."""
    checked = wrap_secret_keys(ProviderRegistry().resource(type_token).check(inputs), secrets)
    return ResourceState(urn=f"{stack}::shop::{type_token}::{name}", type=type_token, id=name,
                         inputs=checked, outputs=dict(checked))


def planned(program: Any, stack: str, *records: ResourceState, outputs: dict[str, Any] | None = None) -> Plan:
    snapshot = Snapshot(stack, "lineage", 5, {r.urn: r for r in records}, dict(outputs or {}))
    return make_plan(declare(program, stack=stack, project="shop"), snapshot, ProviderRegistry())


def dev_plan() -> Plan:
    """Every kind of change: create (with a secret and an unknown), update (a secret
    and a plain value), replace, delete, and changed outputs."""
    def program() -> None:
        suffix = random.Id("suffix", byte_length=4)
        s3.Bucket("assets", bucket="shop-assets-v2", block_public_access=False, tags={"team": "web"})
        local.File("page", path="out/index.html", content="<h1>Hello | welcome</h1>")
        local.File("creds", path="out/db.env", content=sw.secret("PASSWORD=hunter2"), mode=0o600)
        local.File("token", path="out/token", content=sw.secret("tok-123"), mode=0o600)
        local.File("banner", path=sw.fmt("out/{}.txt", suffix.hex), content="`ticks`")
        iam.Policy("admin", name="admin", policy=ADMIN, tags={"team": "platform", "env": "dev"})
        sw.export("page", "out/index.html")
        sw.export("suffix", suffix.hex)

    return planned(
        program, "dev",
        recorded("dev", "aws:s3:Bucket", "assets", bucket="shop-assets", block_public_access=False,
                 tags={"team": "web"}),
        recorded("dev", "local:File", "page", path="out/index.html", content="<h1>Hello</h1>"),
        recorded("dev", "local:File", "creds", path="out/db.env", content="PASSWORD=old-pass",
                 mode=0o600, secrets=frozenset({"content"})),
        recorded("dev", "local:File", "notes", path="out/notes.txt", content="drop me"),
        outputs={"page": "out/index.html", "retired": "gone"},
    )


def production_plan() -> Plan:
    """Nothing to do."""
    return planned(lambda: local.File("page", path="out/index.html", content="hi"), "production",
                   recorded("production", "local:File", "page", path="out/index.html", content="hi"))


def violations_for(plan: Plan, tmp_path: Path) -> list[Violation]:
    env = Environment(name="dev", required_tags=["team", "env"],
                      policies={"no-public-bucket": "mandatory"})
    return evaluate(plan, Project(root=tmp_path, name="shop"), env)


def test_review_snapshot(tmp_path: Path) -> None:
    """The expected file was generated once and read by eye; regenerate it with
    STACKWRIGHT_UPDATE_SNAPSHOTS=1 when the layout changes on purpose, and review the diff."""
    dev = dev_plan()
    text = render_stacks([("dev", dev, violations_for(dev, tmp_path)), ("production", production_plan(), [])])
    expected = SNAPSHOTS / "review.md"
    if os.environ.get("STACKWRIGHT_UPDATE_SNAPSHOTS") == "1":
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8")


def test_destructive_changes_and_violations_come_before_the_details(tmp_path: Path) -> None:
    dev = dev_plan()
    text = render_plan(dev, violations_for(dev, tmp_path))
    first_details = text.index("<details>")
    assert text.index("**replace** `aws:s3:Bucket` `assets`") < first_details
    assert text.index("**delete** `local:File` `notes`") < first_details
    assert text.index("### Policy violations") < first_details
    assert "| `dev` | 4 | 2 | **1** | **1** | 0 | ❌ 2 mandatory · ⚠️ 2 advisory |" in text


def test_secrets_are_masked_everywhere(tmp_path: Path) -> None:
    dev = dev_plan()
    text = render_plan(dev, violations_for(dev, tmp_path))
    assert "hunter2" not in text and "old-pass" not in text and "tok-123" not in text
    assert "| `content` | `[secret]` | `[secret]` |" in text  # the update of creds
    token = text[text.index("<code>+ local:File token</code>"):]
    assert token.index("| `content` | `[secret]` |") < token.index("</details>")


def test_unknown_values_read_known_after_apply() -> None:
    text = render_plan(dev_plan())
    assert "| `path` | *(known after apply)* |" in text
    assert "| `suffix` |  | *(known after apply)* |" in text


def test_table_cells_survive_pipes_and_backticks() -> None:
    text = render_plan(dev_plan())
    assert r'`"<h1>Hello \| welcome</h1>"`' in text
    assert '| ``"`ticks`"`` |' in text


def test_policy_messages_cannot_restyle_the_page() -> None:
    step = Step(urn="dev::shop::local:File::x", type="local:File", op=Op.CREATE, inputs={})
    plan = Plan(stack="dev", project="shop", lineage="l", base_serial=1, steps=(step,))
    text = render_plan(plan, [Violation("mine", "**bold** <script>x</script>\n# heading", step.urn)])
    assert r"\*\*bold\*\* \<script\>x\</script\> \# heading" in text


def huge_plan(resources: int) -> Plan:
    steps = tuple(
        Step(urn=f"dev::shop::local:File::file-{i:05}", type="local:File", op=Op.DELETE if i % 10 == 0 else Op.CREATE,
             inputs={"path": f"out/{i}.txt", "content": "x" * 500, "mode": 420},
             old_inputs={"path": f"out/{i}.txt", "content": "y" * 500})
        for i in range(resources))
    return Plan(stack="dev", project="shop", lineage="l", base_serial=1, steps=steps)


def test_a_huge_plan_is_truncated_under_the_comment_limit_with_a_note() -> None:
    plan = huge_plan(3000)
    text = render_plan(plan, [Violation("mine", f"problem {i}", mandatory=False) for i in range(50)])
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert "| `dev` | 2700 | 0 | 0 | **300** | 0 | ⚠️ 50 advisory |" in text  # the counts are whole
    shown = len(re.findall(r"^<details>", text, re.M))
    note = re.search(r"\*\*Truncated:\*\* ([\d,]+) resources not shown", text)
    assert note is not None and shown + int(note.group(1).replace(",", "")) == 3000
    assert "65,536-character comment limit" in text and "stackwright preview --diff" in text
    assert text.count("<details>") == text.count("</details>")
    assert "problem 49" in text  # violations come before the details and survive


def test_truncation_also_cuts_long_lists_and_counts_what_it_cut() -> None:
    plan = huge_plan(3000)
    text = render_plan(plan, limit=4000)
    assert len(text) <= 4000
    note = re.search(r"\*\*Truncated:\*\* ([\d,]+) destructive changes, 3,000 resources not shown", text)
    assert note is not None
    listed = len(re.findall(r"^- \*\*delete\*\*", text, re.M))
    assert listed + int(note.group(1)) == 300


def test_long_values_and_long_property_lists_are_shortened() -> None:
    inputs = {f"key{i:03}": "v" * 1000 for i in range(80)}
    step = Step(urn="dev::shop::x:Y::big", type="x:Y", op=Op.CREATE, inputs=inputs)
    text = render_plan(Plan(stack="dev", project="shop", lineage="l", base_serial=1, steps=(step,)))
    assert "v" * 1000 not in text and "…" in text
    assert "| *… 30 more* | |" in text
