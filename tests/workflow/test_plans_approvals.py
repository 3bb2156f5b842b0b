"""Saved plans, approvals and the audit log, through the real `stackwright` command.

A project with the ``local`` and ``random`` providers, stacks ``dev`` and ``production``
(protected, one approval), and a program that also reads ``../motd.txt``: a file outside
the project folder, so not part of the program's digest, so changing it makes planning
now differ from a saved plan while the program, config and state stay the same.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.conftest import CliProject

PROGRAM = """\
import pathlib

import stackwright as sw
from stackwright.providers import local, random

config = sw.Config()
greeting = config.require_str("greeting")
motd = pathlib.Path("../motd.txt").read_text()  # outside the project folder: outside the digest

password = random.Password("db-password", length=20)
site = local.File("site", path=sw.fmt("out/{}/index.html", sw.get_stack()),
                  content=sw.fmt("<h1>{}</h1>{}", greeting, motd))
creds = local.File("creds", path=sw.fmt("out/{}/creds.env", sw.get_stack()),
                   content=sw.fmt("PASSWORD={}", password.result), mode=0o600)

sw.export("password", password.result)
sw.export("site_path", site.path)
"""

ENVIRONMENTS: dict[str, Any] = {"production": {"protected": True, "required_approvals": 1}}
PEOPLE = ("alice", "alice@example.com", "bob", "carol", "dave", "mallory", "tester")
"""Everyone the tests let approve has an SSH key, listed in allowed_signers."""


def ssh_key(folder: Path, name: str) -> tuple[Path, str]:
    """A new Ed25519 key pair in OpenSSH format: the private key's path and the public
    key line (``ssh-ed25519 AAAA...``)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding, NoEncryption, PrivateFormat, PublicFormat,
    )

    private = Ed25519PrivateKey.generate()
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(private.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    path.chmod(0o600)
    return path, private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def signed(proj: CliProject, name: str) -> tuple[str, ...]:
    """Arguments that approve as ``name`` with ``name``'s own key."""
    return ("--as", name, "--key", str(proj.root.parent / "keys" / name))


def make_project(root: Path, environments: dict[str, Any] | None = None,
                 groups: dict[str, list[str]] | None = None) -> CliProject:
    root.mkdir()
    settings: dict[str, Any] = {"name": "proj", "main": "__main__.py",
                                "environments": environments or ENVIRONMENTS}
    if groups:
        settings["groups"] = groups
    (root / "stackwright.yaml").write_text(yaml.safe_dump(settings))
    (root / "__main__.py").write_text(PROGRAM)
    (root.parent / "motd.txt").write_text("welcome")
    lines = [f"{who} namespaces=\"stackwright-plan\" {ssh_key(root.parent / 'keys', who)[1]}" for who in PEOPLE]
    (root / "allowed_signers").write_text("\n".join(lines) + "\n")
    proj = CliProject(root)
    for stack in ("dev", "production"):
        proj.write_config({"greeting": f"hello {stack}"}, stack=stack)
        proj.ok("stack", "init", stack)
    proj.ok("stack", "select", "dev")
    return proj


@pytest.fixture
def proj(tmp_path: Path) -> CliProject:
    return make_project(tmp_path / "proj")


@pytest.fixture
def applied(proj: CliProject) -> CliProject:
    """dev applied once: the password exists, so plans carry it (as a known secret)."""
    proj.ok("up", "--yes", "--stack", "dev")
    return proj


def make_plan(proj: CliProject, stack: str = "dev", name: str = "plan.json", **env: str) -> tuple[Path, str]:
    out = proj.ok("plan", "--stack", stack, "--out", name, **env)
    [line] = [line for line in out.splitlines() if line.startswith("Plan hash: ")]
    return proj.root / name, line.removeprefix("Plan hash: ")


def recorded(proj: CliProject, stack: str = "dev") -> tuple[int, int, str]:
    """What state records of ``stack``: its serial (which every write of resources,
    pending operations or outputs advances), its checkpoints, and the files made."""
    store = proj.store()
    try:
        serial, checkpoints = store.snapshot(stack).serial, len(store.history(stack))
    finally:
        store.close()
    out = proj.root / "out" / stack
    files = sorted(f"{p.name}:{p.read_text()}" for p in out.iterdir()) if out.is_dir() else []
    return serial, checkpoints, "|".join(files)


def refused(proj: CliProject, *args: str, **env: str) -> str:
    """Run, require a clean one-line refusal with a hint, and that nothing changed."""
    stack = _stack_of(proj, args)
    before = recorded(proj, stack)
    err = proj.fails(*args, **env)
    assert "hint:" in err, err
    assert recorded(proj, stack) == before
    return err


def _stack_of(proj: CliProject, args: tuple[str, ...]) -> str:
    for arg in args:
        path = proj.root / arg
        if arg.endswith(".json") and path.is_file():
            try:
                return str(json.loads(path.read_text())["plan"]["stack"])
            except (ValueError, KeyError):
                pass
    return "dev"


def secret(proj: CliProject, stack: str = "dev") -> str:
    value = json.loads(proj.ok("outputs", "--show-secrets", "--json", "--stack", stack))["password"]
    assert isinstance(value, str) and len(value) == 20
    return value


def steps(path: Path) -> dict[str, dict[str, Any]]:
    return {s["urn"]: s for s in json.loads(path.read_text())["plan"]["steps"]}


def audit(proj: CliProject, stack: str | None = None) -> list[dict[str, Any]]:
    args = ("audit", "--json") + (("--stack", stack) if stack else ())
    rows: list[dict[str, Any]] = json.loads(proj.ok(*args))
    return rows


SITE = "dev::proj::local:File::site"
CREDS = "dev::proj::local:File::creds"


# --- plan, then apply -----------------------------------------------------------------


def test_plan_then_apply_applies_exactly_the_plan(proj: CliProject) -> None:
    path, digest = make_plan(proj)
    assert "Resources: 3 to create, 0 unchanged" in proj.ok("preview")
    doc = json.loads(path.read_text())
    assert doc["hash"] == digest and doc["summary"] == {"create": 3}
    plan = doc["plan"]
    assert (plan["stack"], plan["project"], doc["created_by"]) == ("dev", "proj", "tester")
    assert plan["providers"] == {"local": "0.1.0", "random": "0.1.0"}
    assert len(plan["program_digest"]) == len(plan["config_digest"]) == 64 and plan["base_serial"] == 0
    assert not proj.file("out").exists(), "planning changes nothing"

    out = proj.ok("apply", "plan.json", "--yes")
    assert f"Applied plan {digest[:12]}" in out
    assert "3 create" in out
    planned = steps(path)[SITE]["inputs"]
    assert proj.file("out/dev/index.html").read_text() == planned["content"] == "<h1>hello dev</h1>welcome"
    assert "No changes." in proj.ok("preview")
    history = proj.ok("history").splitlines()
    assert len(history) == 2 and " apply " in history[1]
    [applied_event] = [e for e in audit(proj) if e["kind"] == "apply"]
    assert applied_event["plan_hash"] == digest
    assert applied_event["data"]["counts"] == doc["summary"]
    assert applied_event["data"]["result"] == "succeeded"


def test_apply_updates_only_what_the_plan_says(applied: CliProject) -> None:
    creds_before = applied.file("out/dev/creds.env").read_text()
    applied.write_config({"greeting": "bye"})
    path, _ = make_plan(applied)
    assert {u: s["op"] for u, s in steps(path).items()} == {
        "dev::proj::random:Password::db-password": "same", SITE: "update", CREDS: "same"}
    out = applied.ok("apply", "plan.json", "--yes")
    assert "1 update" in out
    assert applied.file("out/dev/index.html").read_text() == "<h1>bye</h1>welcome"
    assert applied.file("out/dev/creds.env").read_text() == creds_before


def test_plan_file_holds_no_plain_secret(applied: CliProject) -> None:
    password = secret(applied)
    path, _ = make_plan(applied)
    text = path.read_text()
    assert password not in text
    creds = steps(path)[CREDS]["inputs"]["content"]
    assert list(creds) == ["$encrypted"]
    assert json.loads(text)["plan"]["outputs"]["password"].keys() == {"$encrypted"}
    assert "$secret" not in text
    key = applied.root / ".stackwright" / "secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # The key is what turns the file back into the value apply uses.
    from stackwright.operations.keyring import Keyring
    from stackwright.program.project import load_project
    from stackwright.workflow.secrets import decrypt_tree

    os.environ.pop("STACKWRIGHT_PASSPHRASE", None)
    value = decrypt_tree(creds, Keyring.for_stack(load_project(applied.root), "dev"))
    assert value.value == f"PASSWORD={password}"


def test_plan_with_a_passphrase_applies_elsewhere_with_the_same_passphrase(applied: CliProject) -> None:
    applied.write_config({"greeting": "bye"})
    make_plan(applied, STACKWRIGHT_PASSPHRASE="correct horse")
    err = refused(applied, "apply", "plan.json", "--yes", STACKWRIGHT_PASSPHRASE="wrong")
    assert "cannot decrypt a secret with the passphrase key" in err and len(err.splitlines()) == 2
    out = applied.ok("apply", "plan.json", "--yes", STACKWRIGHT_PASSPHRASE="correct horse")
    assert "Applied plan" in out


# --- tampering ----------------------------------------------------------------------


def test_any_flipped_byte_is_refused(applied: CliProject) -> None:
    from stackwright.workflow.plan_file import PlanFileError, read_plan_file

    applied.write_config({"greeting": "bye"})
    path, _ = make_plan(applied)
    data = path.read_bytes()
    copy = applied.root.parent / "flipped.json"  # outside the project: a file there is part of the program
    for position in range(len(data)):
        copy.write_bytes(data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1:])
        with pytest.raises(PlanFileError):
            read_plan_file(copy)
    # Through the CLI: a structural byte, a byte of an input, of the hash, and whitespace.
    for position in (0, data.index(b"<h1>") + 1, data.index(b'"hash"') + 12, data.index(b"\n  ")):
        copy.write_bytes(data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1:])
        err = refused(applied, "apply", str(copy), "--yes")
        assert "altered" in err or "not a readable" in err, err
    assert "Applied plan" in applied.ok("apply", "plan.json", "--yes")


def test_edited_input_in_valid_json_is_refused(applied: CliProject) -> None:
    from stackwright.workflow.plan_file import content_hash, render

    path, _ = make_plan(applied)
    doc = json.loads(path.read_text())
    site = next(s for s in doc["plan"]["steps"] if s["urn"] == SITE)
    site["inputs"]["content"] = "<h1>pwned</h1>"
    path.write_bytes(render(doc))
    err = refused(applied, "apply", "plan.json", "--yes")
    assert "content hash does not match" in err
    err = refused(applied, "approve", "plan.json", "--as", "bob")
    assert "content hash does not match" in err

    # Re-hashing makes a well-formed file, but one `plan` never made for this stack.
    doc["hash"] = content_hash(doc)
    path.write_bytes(render(doc))
    err = refused(applied, "apply", "plan.json", "--yes")
    assert "was never recorded for stack 'dev'" in err
    assert applied.file("out/dev/index.html").read_text() == "<h1>hello dev</h1>welcome"


def test_whitespace_only_edit_is_refused(applied: CliProject) -> None:
    path, _ = make_plan(applied)
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4, sort_keys=True) + "\n")
    err = refused(applied, "apply", "plan.json", "--yes")
    assert "not byte for byte as Stackwright wrote it" in err


# --- stale or changed -------------------------------------------------------------------


def test_stale_plan_is_refused(applied: CliProject) -> None:
    applied.write_config({"greeting": "bye"})
    make_plan(applied)
    applied.ok("up", "--yes")
    err = refused(applied, "apply", "plan.json", "--yes")
    assert "stack 'dev' changed since plan" in err and "state serial" in err


def test_changed_program_is_refused(applied: CliProject) -> None:
    make_plan(applied)
    applied.program.write_text(applied.program.read_text() + "# a comment changes the program\n")
    err = refused(applied, "apply", "plan.json", "--yes")
    assert "the program changed since plan" in err


def test_changed_config_is_refused(applied: CliProject) -> None:
    make_plan(applied)
    applied.write_config({"greeting": "hello dev", "extra": 1})
    err = refused(applied, "apply", "plan.json", "--yes")
    assert "the config changed since plan" in err and "stacks/dev.yaml" in err


APPLY_TIME_READER = """\
import stackwright as sw
from stackwright.providers import local, random
{imports}
rid = random.Id("rid", byte_length=4)
local.File("conf", path="out/conf.txt", content=rid.hex.apply({render}))
"""
"""A program that reads data only at apply time: the value is unknown when planning."""


def approved_production_plan(proj: CliProject) -> str:
    """A production plan approved by bob; its short hash."""
    _, digest = make_plan(proj, "production")
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    return digest[:12]


def test_a_data_file_changed_after_approval_is_refused(proj: CliProject) -> None:
    proj.program.write_text(APPLY_TIME_READER.format(
        imports="", render='lambda h: open("templates/conf.txt").read().replace("ID", h)'))
    proj.file("templates").mkdir()
    proj.file("templates/conf.txt").write_text("safe ID")
    short = approved_production_plan(proj)
    proj.file("templates/conf.txt").write_text("rm -rf / ID")
    err = refused(proj, "apply", "plan.json", "--yes")
    assert f"the program changed since plan {short} was made (templates/conf.txt changed)" in err
    assert not proj.file("out/conf.txt").exists()
    proj.file("templates/conf.txt").write_text("safe ID")  # restored: the approved plan applies
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")
    assert proj.file("out/conf.txt").read_text().startswith("safe ")


def test_a_data_file_added_after_approval_is_refused(proj: CliProject) -> None:
    short = approved_production_plan(proj)
    proj.file("extra.yaml").write_text("replicas: 100\n")
    err = refused(proj, "apply", "plan.json", "--yes")
    assert f"the program changed since plan {short} was made (extra.yaml added)" in err


def test_shared_code_changed_after_approval_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "lib").mkdir()
    (workspace / "lib" / "shared.py").write_text("def render(h):\n    return 'safe ' + h\n")
    (workspace / "stackwright-workspace.yaml").write_text(
        "python_path: [lib]\nprojects:\n  - path: proj\n    stacks: [dev, production]\n")
    proj = make_project(workspace / "proj")
    proj.program.write_text(APPLY_TIME_READER.format(imports="import shared", render="shared.render"))
    short = approved_production_plan(proj)
    (workspace / "lib" / "shared.py").write_text("def render(h):\n    return 'EVIL ' + h\n")
    err = refused(proj, "apply", "plan.json", "--yes")
    assert f"the program changed since plan {short} was made (../lib/shared.py changed)" in err
    assert not proj.file("out/conf.txt").exists()


def test_files_the_flow_writes_beside_the_program_change_nothing(proj: CliProject) -> None:
    """Plan files, out/, allowed_signers (a new approver's key), dot-files and the state
    are not part of the program: writing them after planning keeps the plan good."""
    make_plan(proj, "dev", name="other.plan.json")
    _, digest = make_plan(proj, "production")
    make_plan(proj, "dev", name="later.plan.json")
    signers = proj.file("allowed_signers")
    signers.write_text(signers.read_text() + f"erin namespaces=\"stackwright-plan\" "
                       f"{ssh_key(proj.root.parent / 'keys', 'erin')[1]}\n")
    proj.ok("approve", "plan.json", "--as", "erin", "--key", str(proj.root.parent / "keys" / "erin"))
    proj.file(".notes").write_text("reviewed")
    proj.file("out").mkdir(exist_ok=True)
    proj.file("out/report.txt").write_text("x")
    proj.ok("up", "--yes", "--stack", "dev")
    assert f"Applied plan {digest[:12]}" in proj.ok("apply", "plan.json", "--yes")


def test_plan_that_would_now_do_something_else_is_refused(applied: CliProject) -> None:
    make_plan(applied)
    (applied.root.parent / "motd.txt").write_text("something else")
    err = refused(applied, "apply", "plan.json", "--yes")
    assert "applying would do something the plan did not say" in err
    assert "it would now update local:File site (the plan says leave unchanged)" in err
    assert "something else" not in err


def test_plan_for_another_stack_is_refused(applied: CliProject) -> None:
    make_plan(applied)
    err = refused(applied, "apply", "plan.json", "--yes", "--stack", "production")
    assert "is for stack 'dev', not 'production'" in err


# --- approvals in a protected environment ----------------------------------------------------


def test_production_needs_an_approval_from_someone_else(proj: CliProject) -> None:
    path, digest = make_plan(proj, "production")
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "needs 1 approval(s)" in err and "1 missing" in err
    assert "anyone but tester (the author)" in err

    err = refused(proj, "approve", "plan.json")
    assert "tester made plan" in err and "does not allow self-approval" in err

    err = refused(proj, "approve", "plan.json", "--as", "bob")
    assert "environment 'production' is protected: an approval must be signed" in err
    out = proj.ok("approve", "plan.json", *signed(proj, "bob"), "--comment", "looks right")
    assert "Approved plan" in out and "1 of 1 needed" in out
    out = proj.ok("apply", "plan.json", "--yes")
    assert f"Applied plan {digest[:12]}" in out
    assert proj.file("out/production/index.html").read_text() == "<h1>hello production</h1>welcome"

    rows = audit(proj, "production")
    assert [(r["kind"], r["who"]) for r in rows] == [
        ("plan", "tester"), ("attempt", "tester"), ("approve", "bob"), ("apply", "tester")]
    assert all(r["plan_hash"] == digest for r in rows)
    assert rows[1]["detail"].startswith("apply FAILED before applying (at approval): environment 'production' "
                                        "needs 1 approval(s)")
    assert rows[2]["detail"].startswith("[signed SHA256:") and rows[2]["detail"].endswith("] looks right")
    assert rows[3]["data"]["approved_by"] == ["bob"]


def test_identity_comes_from_the_environment(proj: CliProject) -> None:
    make_plan(proj, "production", STACKWRIGHT_USER="alice@example.com")
    proj.ok("approve", "plan.json", "--key", str(proj.root.parent / "keys" / "tester"))  # STACKWRIGHT_USER=tester
    proj.ok("apply", "plan.json", "--yes", STACKWRIGHT_USER="ci-bot")
    rows = audit(proj, "production")
    assert [(r["kind"], r["who"]) for r in rows] == [
        ("plan", "alice@example.com"), ("approve", "tester"), ("apply", "ci-bot")]


def test_co_authors_from_the_environment_may_not_approve_either(proj: CliProject) -> None:
    """How CI plans a merged pull request: as its author, with whoever merged it as a
    co-author (STACKWRIGHT_CO_AUTHORS, docs/ci.md); neither may approve the plan."""
    _, digest = make_plan(proj, "production", STACKWRIGHT_USER="carol", STACKWRIGHT_CO_AUTHORS="bob")
    err = refused(proj, "approve", "plan.json", *signed(proj, "bob"))
    assert f"bob is a co-author of plan {digest[:12]} (made by carol) and may not approve it" in err
    assert "anyone but carol, bob (the authors)" in err
    err = refused(proj, "approve", "plan.json", *signed(proj, "carol"))
    assert f"carol made plan {digest[:12]}" in err
    proj.ok("approve", "plan.json", *signed(proj, "dave"))
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")
    [made, *_] = audit(proj, "production")
    assert (made["kind"], made["who"], made["data"]["co_authors"]) == ("plan", "carol", ["bob"])
    assert made["detail"].endswith("plan.json (co-authors: bob)")


def test_rejection_blocks_until_approved_again(proj: CliProject) -> None:
    make_plan(proj, "production")
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    out = proj.ok("reject", "plan.json", "--as", "carol", "--comment", "not during the freeze")
    assert "Rejected plan" in out
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "rejected by carol" in err and "not during the freeze" in err

    proj.ok("approve", "plan.json", *signed(proj, "dave"), "--comment", "freeze is over")
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")


def test_rejection_blocks_in_unprotected_environments_too(proj: CliProject) -> None:
    make_plan(proj)
    proj.ok("reject", "plan.json", "--comment", "wrong branch")
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "rejected by tester" in err and "wrong branch" in err


def test_approvals_are_for_that_exact_plan(proj: CliProject) -> None:
    make_plan(proj, "production", name="first.json")
    proj.ok("approve", "first.json", *signed(proj, "bob"))
    make_plan(proj, "production", name="second.json")
    err = refused(proj, "apply", "second.json", "--yes")
    assert "needs 1 approval(s)" in err
    assert "Applied plan" in proj.ok("apply", "first.json", "--yes")


def test_only_listed_approvers_may_approve(tmp_path: Path) -> None:
    env = {"production": {"protected": True, "required_approvals": 2,
                          "approvers": ["alice", "group:sre"]}}
    proj = make_project(tmp_path / "proj", env, groups={"sre": ["bob", "carol"]})
    make_plan(proj, "production")
    err = refused(proj, "approve", "plan.json", *signed(proj, "mallory"))
    assert "mallory is not an approver of environment 'production'" in err
    err = refused(proj, "reject", "plan.json", "--as", "mallory")
    assert "may not reject" in err
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    proj.ok("approve", "plan.json", *signed(proj, "bob"))  # the same person twice counts once
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "needs 2 approval(s)" in err and "1 missing, approved by bob" in err
    assert "alice, group:sre (not tester, the author)" in err
    proj.ok("approve", "plan.json", *signed(proj, "alice"))
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")


def test_audit_lists_plans_reviews_and_applies_with_identities(proj: CliProject) -> None:
    proj.ok("up", "--yes", "--stack", "dev")
    _, first = make_plan(proj, "production", name="first.json")
    proj.ok("reject", "first.json", "--as", "carol", "--comment", "too early")
    _, second = make_plan(proj, "production", name="second.json", STACKWRIGHT_USER="alice")
    proj.ok("approve", "second.json", *signed(proj, "bob"), "--comment", "ship it")
    proj.ok("apply", "second.json", "--yes", "--as", "deployer")

    rows = audit(proj)
    assert [(r["stack"], r["kind"], r["who"]) for r in rows] == [
        ("dev", "up", "tester"), ("production", "plan", "tester"), ("production", "reject", "carol"),
        ("production", "plan", "alice"), ("production", "approve", "bob"),
        ("production", "apply", "deployer")]
    assert [r["plan_hash"] for r in rows[1:]] == [first, first, second, second, second]
    assert rows[5]["data"]["result"] == "succeeded" and rows[5]["data"]["plan_hash"] == second

    text = proj.ok("audit", "--stack", "production").splitlines()
    assert len(text) == 5
    assert "carol" in text[1] and first[:12] in text[1] and "too early" in text[1]
    assert "bob" in text[3] and "ship it" in text[3]
    assert "deployer" in text[4] and "succeeded" in text[4]


POLICIES = """\
import stackwright as sw


@sw.policy
def no_shouting(plan):
    for step in plan.steps:
        if step.inputs and "LOUD" in str(step.inputs.get("content", "")):
            yield sw.Violation("the page shouts", urn=step.urn)


@sw.policy(enforcement="advisory")
def short_greetings(plan):
    for step in plan.steps:
        if step.inputs and len(str(step.inputs.get("content", ""))) > 20:
            yield sw.Violation("a long page", urn=step.urn)
"""


def test_mandatory_policy_violation_blocks_writing_the_plan_cli(proj: CliProject) -> None:
    (proj.root / "policies").mkdir()
    (proj.root / "policies" / "pages.py").write_text(POLICIES)
    proj.write_config({"greeting": "LOUD"})
    err = proj.fails("plan", "--out", "plan.json")
    assert "policy no_shouting (mandatory): the page shouts" in err
    assert "plan not written" in err
    assert not proj.file("plan.json").exists()

    proj.write_config({"greeting": "a greeting long enough"})
    out = proj.ok("plan", "--out", "plan.json")
    assert "policy short_greetings (advisory): a long page" in out
    [violation] = json.loads(proj.file("plan.json").read_text())["violations"]
    assert violation == {"policy": "short_greetings", "message": "a long page", "urn": SITE,
                         "mandatory": False}
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")


# --- in-process: policies and a value that comes out different during apply -----------------


def test_mandatory_policy_violation_blocks_writing_the_plan(proj: CliProject,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from stackwright.operations.session import open_session
    from stackwright.program.project import load_project
    from stackwright.workflow import plan_file, policies

    found = [policies.Violation("no-fun", "site is too fun", SITE, mandatory=True),
             policies.Violation("style", "consider a longer greeting", None, mandatory=False)]
    monkeypatch.setattr(policies, "evaluate", lambda *a, **k: list(found))
    monkeypatch.chdir(proj.root)
    session = open_session(load_project(proj.root), "dev", "tester")
    try:
        with pytest.raises(plan_file.PolicyBlocked) as caught:
            plan_file.save_plan(session, proj.root / "plan.json")
        assert "no-fun: site is too fun" in str(caught.value)
        assert not (proj.root / "plan.json").exists()

        found.pop(0)  # only the advisory one is left: the plan is written and lists it
        written = plan_file.save_plan(session, proj.root / "plan.json")
        assert written.saved.get("violations") == [
            {"policy": "style", "message": "consider a longer greeting", "urn": None, "mandatory": False}]
    finally:
        session.close()


UPPER_PROGRAM = """\
import stackwright as sw
from unit.fakes import Thing

first = Thing("first", label="quiet")
second = Thing("second", label=first.label, ref=first.arn)
"""


def test_value_the_plan_fixed_coming_out_different_fails_the_apply(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan fixes ``second.label`` to ``first.label`` as declared; this provider
    returns it upper-cased, so at apply time the value differs: that step fails, with
    the engine's hint, and nothing after it runs."""
    from stackwright.engine.apply import ApplyOptions
    from stackwright.engine.events import EventSink
    from stackwright.operations.scaffold import init_stack
    from stackwright.operations.session import open_session
    from stackwright.program.project import load_project
    from stackwright.providers.protocol import Created, OperationContext
    from stackwright.providers.registry import ProviderRegistry, SimpleProvider
    from stackwright.workflow import plan_file
    from stackwright.workflow.secrets import stack_keyring
    from unit.fakes import ThingProvider

    class Shouting(ThingProvider):
        def create(self, ctx: OperationContext, inputs: Any) -> Created:
            made = super().create(ctx, inputs)
            return Created(made.id, {**made.outputs, "label": str(inputs["label"]).upper()})

    root = tmp_path / "proj"
    root.mkdir()
    (root / "stackwright.yaml").write_text("name: proj\nmain: __main__.py\n")
    (root / "__main__.py").write_text(UPPER_PROGRAM)
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent))
    project = load_project(root)
    init_stack(project, "dev")
    registry = ProviderRegistry()
    registry.add(SimpleProvider("fake", "1.0", [Shouting()]))
    session = open_session(project, "dev", "tester", registry=registry)
    try:
        written = plan_file.save_plan(session, root / "plan.json")
        saved = plan_file.read_plan_file(root / "plan.json")
        assert saved.plan(stack_keyring(session)) == written.plan, "the file holds the whole plan"
        assert steps(root / "plan.json")["dev::proj::fake:Thing::second"]["inputs"]["label"] == "quiet"
        outcome = plan_file.apply_plan_file(session, saved, options=ApplyOptions(), sink=EventSink(),
                                            confirm=lambda plan: True)
    finally:
        session.close()
    assert outcome.plan == written.plan, "apply ran the saved plan itself, nothing recomputed"
    assert outcome.result is not None and not outcome.result.ok
    [failure] = outcome.result.failures
    assert failure.urn == "dev::proj::fake:Thing::second"
    assert failure.message == "__main__.py:5: label came out different from the plan"
    assert failure.hint is not None and "make a new plan" in failure.hint
    assert outcome.checkpoint is not None and outcome.checkpoint.result == "failed"


# --- secrets.py -------------------------------------------------------------------------


def test_secrets_round_trip_with_a_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stackwright.model.values import UNKNOWN, Secret
    from stackwright.operations.keyring import Keyring, parse_spec
    from stackwright.program.project import Project
    from stackwright.workflow.secrets import decrypt_tree, encrypt_tree

    monkeypatch.delenv("STACKWRIGHT_PASSPHRASE", raising=False)
    project = Project(root=tmp_path, name="proj")
    keyring = Keyring(project, parse_spec(None))
    value = {"user": "app", "password": Secret("hunter2"), "later": UNKNOWN,
             "list": [1, Secret({"nested": Secret("deep")}), (2, 3)], "none": None}
    sealed = encrypt_tree(value, keyring)
    path = tmp_path / ".stackwright" / "secrets.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = json.dumps(sealed)
    assert "hunter2" not in text and "deep" not in text
    assert sealed["password"].keys() == {"$encrypted"} and sealed["password"]["$encrypted"].startswith("local:")
    assert sealed["later"] == {"$unknown": True}
    opened = decrypt_tree(json.loads(text), Keyring(project, parse_spec(None)))
    assert opened == {**value, "list": [1, Secret({"nested": Secret("deep")}), [2, 3]]}
    masked_view = decrypt_tree(sealed, None)
    assert masked_view["password"] == Secret(None) and masked_view["user"] == "app"


def test_secrets_with_a_passphrase_and_a_wrong_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stackwright.model.values import Secret
    from stackwright.operations.keyring import Keyring, SecretsError, parse_spec
    from stackwright.program.project import Project
    from stackwright.workflow.secrets import decrypt_tree, encrypt_tree

    monkeypatch.setenv("STACKWRIGHT_PASSPHRASE", "correct horse")
    here, there = Project(root=tmp_path / "a", name="proj"), Project(root=tmp_path / "b", name="proj")
    sealed = encrypt_tree({"p": Secret("s3cret")}, Keyring(here, parse_spec(None)))
    assert decrypt_tree(sealed, Keyring(there, parse_spec(None))) == {"p": Secret("s3cret")}, \
        "the same passphrase opens it anywhere"
    assert not (tmp_path / "a" / ".stackwright").exists()
    with pytest.raises(SecretsError, match="cannot decrypt a secret with the passphrase key"):
        decrypt_tree(sealed, Keyring(Project(root=tmp_path / "c", name="other"), parse_spec(None)))
    monkeypatch.setenv("STACKWRIGHT_PASSPHRASE", "wrong")
    with pytest.raises(SecretsError, match="cannot decrypt a secret with the passphrase key"):
        decrypt_tree(sealed, Keyring(here, parse_spec(None)))
