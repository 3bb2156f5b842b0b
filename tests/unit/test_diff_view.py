"""`preview --diff` (and `refresh`, `history show`): nested changes path by path, list
elements matched by an identifying key or by content, values whole (no 120-character
cut), creates over several lines, secrets masked at any depth; the short form stays
compact."""

from __future__ import annotations

import click

from stackwright.cli.diff_view import change_lines
from stackwright.cli.render import plan_lines
from stackwright.model.values import UNKNOWN, Secret
from stackwright.plan.diff import diff_inputs
from stackwright.plan.plan import Op, Plan, make_step

URN = "dev::proj::aws:ec2:SecurityGroup::web"
HTTPS = {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["10.0.0.0/8", "172.16.0.0/12"],
         "description": "https from the office networks, which need a long description to pass 120 chars"}
SSH = {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["10.1.2.3/32"], "description": "bastion"}
HTTP = {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr_blocks": ["0.0.0.0/0"], "description": "redirect"}


def plain(lines: list[str]) -> list[str]:
    return [click.unstyle(line) for line in lines]


def shown(old: dict[str, object], new: dict[str, object], op: Op = Op.UPDATE, diff: bool = True,
          replace_keys: frozenset[str] = frozenset()) -> list[str]:
    step = make_step(urn=URN, type="aws:ec2:SecurityGroup", op=op, inputs=new, old_inputs=old, old_id="sg-1",
                     diffs=diff_inputs(old, new, replace_keys))
    plan = Plan(stack="dev", project="proj", lineage="l", base_serial=1, steps=(step,))
    return plain(plan_lines(plan, show_diff=diff))


def test_a_rule_added_to_a_list_is_one_added_element_shown_whole() -> None:
    lines = shown({"ingress": [HTTPS, SSH]}, {"ingress": [HTTPS, SSH, HTTP]})
    body = [line.strip() for line in lines[2:-1]]
    assert body[0] == "+ ingress[2]: {", lines
    assert '"from_port": 80,' in body and '"0.0.0.0/0"' in body and '"description": "redirect"' in body
    assert body[-1] == "}" and not any("=>" in line or "..." in line for line in lines), lines


def test_a_rule_changed_and_one_inserted_are_told_apart() -> None:
    changed = {**SSH, "from_port": 2222, "to_port": 2222}
    lines = [line.strip() for line in shown({"ingress": [HTTPS, SSH]}, {"ingress": [HTTP, HTTPS, changed]})]
    assert "+ ingress[0]: {" in lines, lines
    assert "~ ingress[2].from_port: 22 => 2222" in lines and "~ ingress[2].to_port: 22 => 2222" in lines
    assert not any(line.startswith("~ ingress[1]") or line.startswith("- ") for line in lines), lines


def test_list_elements_with_a_name_are_matched_by_it() -> None:
    old = {"containers": [{"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}]}]}
    new = {"containers": [{"name": "sidecar", "image": "proxy:2"},
                          {"name": "web", "image": "web:2", "env": [{"name": "B", "value": "2"},
                                                                    {"name": "A", "value": "1"}]}]}
    lines = [line.strip() for line in shown(old, new)]
    assert '~ containers[name=web].image: "web:1" => "web:2"' in lines, lines
    assert "+ containers[name=sidecar]: {" in lines
    assert "+ containers[name=web].env[name=B]: {" in lines
    assert not any("env[name=A]" in line for line in lines), "unchanged elements are not shown"
    removed = [line.strip() for line in shown(new, old)]
    assert "- containers[name=sidecar]: {" in removed and "- containers[name=web].env[name=B]: {" in removed


def test_values_are_not_cut_with_diff_and_are_in_the_short_form() -> None:
    long_old, long_new = "a" * 300, "a" * 299 + "b"
    full = shown({"policy": long_old}, {"policy": long_new}, op=Op.REPLACE, replace_keys=frozenset({"policy"}))
    assert f'~ policy: "{long_old}" => "{long_new}"  [forces replacement]' in [line.strip() for line in full]
    short = shown({"policy": long_old}, {"policy": long_new}, op=Op.REPLACE, diff=False,
                  replace_keys=frozenset({"policy"}))
    assert any(line.strip().startswith("~ policy: ") and "..." in line for line in short), short


def test_a_created_manifest_is_shown_whole_over_several_lines() -> None:
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"replicas": 3, "template": {"spec": {"containers": [
                    {"name": "web", "image": "registry.example.com/shop/web:1.2.3",
                     "env": [{"name": "DB_PASSWORD", "value": Secret("hunter2")}]}]}}}}
    step = make_step(urn="dev::proj::k8s:apps/v1:Deployment::web", type="k8s:apps/v1:Deployment", op=Op.CREATE,
                     inputs={"manifest": manifest, "token": Secret("s3cr3t"), "uid": UNKNOWN})
    lines = plain(plan_lines(Plan(stack="dev", project="proj", lineage="l", base_serial=1, steps=(step,)),
                             show_diff=True))
    text = "\n".join(lines)
    assert "      manifest: {" in lines, text
    assert '"replicas": 3' in text and '"image": "registry.example.com/shop/web:1.2.3"' in text
    assert '"value": "[secret]"' in text and "hunter2" not in text and "s3cr3t" not in text
    assert "      token: [secret]" in lines and "      uid: (known after apply)" in lines
    assert "..." not in text


def test_secrets_are_masked_at_any_depth_in_changes() -> None:
    old = {"env": [{"name": "PW", "value": Secret("old-pass")}, {"name": "X", "value": "1"}]}
    new = {"env": [{"name": "PW", "value": Secret("new-pass")}, {"name": "X", "value": "1"},
                   {"name": "Y", "value": Secret("added-pass")}]}
    lines = [line.strip() for line in shown(old, new)]
    text = "\n".join(lines)
    assert "~ env[name=PW].value: [secret] => [secret]" in lines, text
    assert '"value": "[secret]"' in text and "pass" not in text
    whole = plain(change_lines("data", "update", Secret({"a": "old"}), Secret({"a": "new"})))
    assert whole == ["~ data: [secret] => [secret]"]


def test_multi_line_texts_show_the_lines_that_changed() -> None:
    lines = plain(change_lines("content", "update", "one\ntwo\nthree\n", "one\n2\nthree\n"))
    assert lines[0] == "~ content:" and "    - two" in lines and "    + 2" in lines and "      one" in lines


def test_a_reordered_list_with_names_says_so() -> None:
    old = {"rules": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}
    new = {"rules": [{"name": "b", "port": 2}, {"name": "a", "port": 1}]}
    assert "~ rules: order [a, b] => [b, a]" in [line.strip() for line in shown(old, new)]
