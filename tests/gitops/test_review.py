"""The Markdown review of a plan with a Helm release and plain infrastructure in one page:
a chart version bump shows the release, its chart versions and the Deployment whose
image changed, field by field; the largest diffs fold before anything is left out."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helm_servers import EXAMPLE_CHART
from test_diff import bump_chart

import stackwright as sw
from stackwright.plan.plan import Op, Plan
from stackwright.plan.planner import make_plan
from stackwright.providers import k8s, local
from stackwright.providers.k8s import helm
from stackwright.providers.registry import ProviderRegistry
from stackwright.state.records import ResourceState, Snapshot
from stackwright.testing import declare
from stackwright.workflow.markdown import NOTE_RESERVE, render_plan


@pytest.fixture(autouse=True)
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def program(chart: Path, greeting: str) -> None:
    ns = k8s.Namespace("shop", metadata={"name": "shop"})
    local.File("motd", path="out/motd.txt", content=greeting)
    k8s.Secret("db", metadata={"namespace": "shop"}, string_data={"password": sw.secret("hunter2")})
    helm.Chart("web", path=str(chart), namespace="shop", values={"autoscaling": {"enabled": False}},
               opts=sw.ResourceOptions(depends_on=[ns]))


def plan(chart: Path, greeting: str, applied: Plan | None = None) -> Plan:
    records = {s.urn: ResourceState(urn=s.urn, type=s.type, id=s.urn, inputs=dict(s.inputs or {}),
                                    outputs=dict(s.inputs or {}), parent=s.parent, deps=list(s.deps),
                                    options=dict(s.options))
               for s in (applied.steps if applied else ())}
    snapshot = Snapshot("dev", "lineage", 3, records, {})
    return make_plan(declare(lambda: program(chart, greeting), stack="dev", project="shop"), snapshot,
                     ProviderRegistry())


def bumped_plans(tmp_path: Path, greeting: str = "hello, world") -> tuple[Plan, Plan]:
    """The plan of version 0.3.0 (applied), then the plan of the bump to 0.4.0. The
    bumped chart is a copy: a program run reads each chart folder's digest once."""
    bumped = tmp_path / "bumped"
    shutil.copytree(EXAMPLE_CHART, bumped)
    bump_chart(bumped, "0.4.0", "1.28.1")
    before = plan(EXAMPLE_CHART, "hello")
    return before, plan(bumped, greeting, applied=before)


def test_a_chart_bump_and_an_infrastructure_change_are_reviewed_on_one_page(tmp_path: Path) -> None:
    _, after = bumped_plans(tmp_path)

    text = render_plan(after)

    assert "<code>~ local:File motd</code> update" in text
    assert ("#### Helm release `web` in `shop` — chart `app-0.3.0` → `app-0.4.0`: 5 to update\n\n"
            'Images: `"nginx:1.27.0"` → `"nginx:1.28.1"`') in text
    deployment = text[text.index("<code>~ k8s:apps/v1:Deployment shop/web-app</code>"):]
    deployment = deployment[:deployment.index("</details>")]
    assert '| `spec.template.spec.containers[0].image` | `"nginx:1.27.0"` | `"nginx:1.28.1"` |' in deployment
    assert text.index("local:File motd") < text.index("#### Helm release `web`")
    assert "Secret db" not in text  # unchanged


def test_a_created_object_lists_its_fields_and_masks_its_secrets(tmp_path: Path) -> None:
    text = render_plan(plan(EXAMPLE_CHART, "hello"))
    secret = text[text.index("<code>+ k8s:core/v1:Secret db</code>"):]
    assert "| `stringData.password` | `[secret]` |" in secret[:secret.index("</details>")]
    assert "hunter2" not in text
    assert "| `spec.template.spec.containers[0].image` | `\"nginx:1.27.0\"` |" in text


def test_the_largest_diffs_fold_first_to_fit_the_limit(tmp_path: Path) -> None:
    _, after = bumped_plans(tmp_path)
    full = render_plan(after)
    limit = len(full) + NOTE_RESERVE - 150  # 150 characters over the room for the diffs
    text = render_plan(after, limit=limit)
    assert len(text) <= limit and "Truncated" not in text
    assert text.count("<details>") == full.count("<details>") == sum(1 for s in after.steps if s.op is Op.UPDATE)
    deployment = "<code>~ k8s:apps/v1:Deployment shop/web-app</code> update</summary>\n\n"
    assert deployment + "Folded to fit the comment limit: 3 field(s) change: " in text  # the largest diff
    assert '| `spec.template.spec.containers[0].image` | `"nginx:1.27.0"` |' not in text
    assert '| `content` | `"hello"` | `"hello, world"` |' in text  # smaller ones keep their values
