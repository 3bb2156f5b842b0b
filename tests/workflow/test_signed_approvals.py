"""Signed approvals: every way to get an approval counted without the right key fails.

The project is ``test_plans_approvals``'s: ``production`` is protected (one approval,
no self-approval), and everyone in ``PEOPLE`` has a key listed in allowed_signers. An
attacker who can write the state backend is simulated by recording approval events
directly: apply must judge each one by its signature, not by what the event claims.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli.conftest import CliProject
from workflow.test_plans_approvals import make_plan, make_project, refused, signed, ssh_key

SSH_KEYGEN = shutil.which("ssh-keygen")


@pytest.fixture
def proj(tmp_path: Path) -> CliProject:
    return make_project(tmp_path / "proj")


def key_of(proj: CliProject, name: str) -> Path:
    return proj.root.parent / "keys" / name


def inject_approval(proj: CliProject, who: str, data: dict[str, Any], digest: str) -> None:
    """What someone with write access to the state backend could record."""
    store = proj.store("production")
    try:
        store.record_event("production", "approve", who, {
            "plan_hash": digest, "author": "tester", "comment": "", "environment": "production", **data})
    finally:
        store.close()


def signature(proj: CliProject, name: str, message: str) -> str:
    from stackwright.workflow.signing import load_signing_key

    return load_signing_key(key_of(proj, name)).sign(message.encode())


def test_a_signed_approval_counts_and_its_signature_checks_with_ssh_keygen(proj: CliProject) -> None:
    path, digest = make_plan(proj, "production")
    out = proj.ok("approve", "plan.json", *signed(proj, "bob"))
    assert "Approved plan" in out and "1 of 1 needed" in out
    [event] = [r for r in json.loads(proj.ok("audit", "--json")) if r["kind"] == "approve"]
    assert event["who"] == "bob" and event["data"]["proof"] == "signed"
    if SSH_KEYGEN is None:
        assert os.environ.get("CI") != "true", "ssh-keygen is missing (apt-get install openssh-client)"
        pytest.skip("ssh-keygen is not installed")
    sig = proj.root.parent / "approval.sig"  # outside the project: a file there is part of the program
    sig.write_text(event["data"]["signature"])
    checked = subprocess.run([SSH_KEYGEN, "-Y", "verify", "-f", str(proj.root / "allowed_signers"),
                              "-I", "bob", "-n", "stackwright-plan", "-s", str(sig)],
                             input=digest.encode(), capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert f"Good \"stackwright-plan\" signature for bob with ED25519 key {event['data']['key']}" in \
        checked.stdout.decode() + checked.stderr.decode()
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")


def test_a_signature_made_by_ssh_keygen_counts(proj: CliProject) -> None:
    if SSH_KEYGEN is None:
        assert os.environ.get("CI") != "true", "ssh-keygen is missing (apt-get install openssh-client)"
        pytest.skip("ssh-keygen is not installed")
    _, digest = make_plan(proj, "production")
    message = proj.root.parent / "hash.txt"  # outside the project: a file there is part of the program
    message.write_text(digest)
    subprocess.run([SSH_KEYGEN, "-Y", "sign", "-f", str(key_of(proj, "carol")), "-n", "stackwright-plan",
                    str(message)], check=True, capture_output=True)
    inject_approval(proj, "carol", {"proof": "signed", "signature": (proj.root.parent / "hash.txt.sig").read_text()},
                    digest)
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")


def test_a_key_not_listed_for_the_identity_cannot_approve(proj: CliProject) -> None:
    make_plan(proj, "production")
    err = refused(proj, "approve", "plan.json", "--as", "bob", "--key", str(key_of(proj, "mallory")))
    assert "would not count" in err and "is not listed for bob in allowed_signers" in err
    stranger, _ = ssh_key(proj.root.parent / "keys", "stranger")
    err = refused(proj, "approve", "plan.json", "--as", "bob", "--key", str(stranger))
    assert "is not listed for bob" in err


@pytest.mark.parametrize("forgery", ["unsigned", "other key", "other plan", "altered", "other namespace",
                                     "garbage"])
def test_apply_refuses_forged_approvals_in_the_state_backend(proj: CliProject, forgery: str) -> None:
    _, digest = make_plan(proj, "production")
    data: dict[str, Any] = {
        "unsigned": {"proof": "claimed"},
        "other key": {"proof": "signed", "signature": signature(proj, "mallory", digest)},
        "other plan": {"proof": "signed", "signature": signature(proj, "bob", "0" * 64)},
        "altered": {"proof": "signed", "signature": _flip(signature(proj, "bob", digest))},
        "other namespace": {"proof": "signed", "signature": _namespaced(proj, "bob", digest)},
        "garbage": {"proof": "signed", "signature": "not a signature"},
    }[forgery]
    inject_approval(proj, "bob", data, digest)
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "1 missing; not counted: bob (" in err
    reason = {"unsigned": "unsigned", "other key": "is not listed for bob",
              "other plan": "does not match this plan", "altered": "signature refused",
              "other namespace": "not 'stackwright-plan'", "garbage": "not an SSH signature"}[forgery]
    assert reason in err


def _flip(armored: str) -> str:
    """One character of the signature's last line changed."""
    lines = armored.splitlines()
    last = lines[-2]
    lines[-2] = last[:-3] + ("A" if last[-3] != "A" else "B") + last[-2:]
    return "\n".join(lines) + "\n"


def _namespaced(proj: CliProject, name: str, digest: str) -> str:
    from stackwright.workflow.signing import load_signing_key

    return load_signing_key(key_of(proj, name)).sign(digest.encode(), namespace="git")


def test_the_author_cannot_approve_with_their_own_key(proj: CliProject) -> None:
    _, digest = make_plan(proj, "production")  # made by tester
    err = refused(proj, "approve", "plan.json", *signed(proj, "tester"))
    assert "tester made plan" in err and "does not allow self-approval" in err
    inject_approval(proj, "tester", {"proof": "signed", "signature": signature(proj, "tester", digest)}, digest)
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "not counted: tester (the plan's author)" in err


def test_self_approval_counts_where_the_environment_allows_it(tmp_path: Path) -> None:
    env = {"production": {"protected": True, "required_approvals": 1, "allow_self_approval": True}}
    proj = make_project(tmp_path / "proj", env)
    make_plan(proj, "production")
    proj.ok("approve", "plan.json", *signed(proj, "tester"))
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")


def test_removing_a_signer_from_allowed_signers_revokes_their_approvals(proj: CliProject) -> None:
    make_plan(proj, "production")
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    signers = proj.root / "allowed_signers"
    signers.write_text("".join(line + "\n" for line in signers.read_text().splitlines()
                               if not line.startswith("bob ")))
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "not counted: bob (signature refused: key SHA256:" in err


def test_a_stale_plan_is_refused_even_when_signed(proj: CliProject) -> None:
    make_plan(proj, "production")
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    make_plan(proj, "production", name="other.json")  # the same change, applied first
    proj.ok("approve", "other.json", *signed(proj, "bob"))
    proj.ok("apply", "other.json", "--yes")
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "changed since plan" in err


def test_unprotected_environments_take_claimed_identities(proj: CliProject) -> None:
    make_plan(proj)
    proj.ok("approve", "plan.json", "--as", "bob")
    [event] = [r for r in json.loads(proj.ok("audit", "--json")) if r["kind"] == "approve"]
    assert event["data"]["proof"] == "claimed" and "signature" not in event["data"]
    assert "[claimed]" in proj.ok("audit")


def github_payload(proj: CliProject, login: str) -> Path:
    path = proj.root.parent / "event.json"
    path.write_text(json.dumps({"action": "created", "comment": {
        "body": "/approve", "html_url": "https://github.com/o/r/issues/1#c1", "user": {"login": login}},
        "sender": {"login": login}}))
    return path


def test_github_approvals_count_only_where_allowed_and_only_from_listed_logins(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "proj")
    make_plan(proj, "production")
    event = str(github_payload(proj, "bob"))
    err = refused(proj, "approve", "plan.json", "--github-event", event)
    assert "counts signed approvals only" in err

    env = {"production": {"protected": True, "required_approvals": 1, "github_approvals": True}}
    other = make_project(tmp_path / "other", env, groups={"sre": ["octocat"]})
    make_plan(other, "production")
    err = refused(other, "approve", "plan.json", "--github-event", str(github_payload(other, "mallory-gh")))
    assert "allowed_signers does not list mallory-gh" in err
    out = other.ok("approve", "plan.json", "--github-event", str(github_payload(other, "octocat")),
                   "--as", "someone-else")
    assert "Approved plan" in out and "as octocat" in out
    rows = [r for r in json.loads(other.ok("audit", "--json")) if r["kind"] == "approve"]
    assert [(r["who"], r["data"]["proof"]) for r in rows] == [("octocat", "github")]
    assert "Applied plan" in other.ok("apply", "plan.json", "--yes")


def test_the_key_that_signed_the_plan_cannot_approve_it_under_another_name(proj: CliProject) -> None:
    """An author listed under two identities with one key is still the author."""
    signers = proj.root / "allowed_signers"
    tester_key = next(line for line in signers.read_text().splitlines() if line.startswith("tester "))
    signers.write_text(signers.read_text() + tester_key.replace("tester ", "bob ", 1) + "\n")
    make_plan(proj, "production", name="plan.json")
    proj.ok("plan", "--stack", "production", "--out", "signed.json", "--key", str(key_of(proj, "tester")))
    [signed_plan] = [r for r in json.loads(proj.ok("audit", "--json"))
                     if r["kind"] == "plan" and r["data"].get("signature")]
    assert signed_plan["data"]["key"].startswith("SHA256:")
    err = refused(proj, "approve", "signed.json", "--as", "bob", "--key", str(key_of(proj, "tester")))
    assert "signed the plan, and self-approval is off" in err
    signed_hash = signed_plan["plan_hash"]
    inject_approval(proj, "bob", {"proof": "signed", "signature": signature(proj, "tester", signed_hash)},
                    signed_hash)
    err = refused(proj, "apply", "signed.json", "--yes")
    assert "not counted: bob (signed with the key that signed the plan)" in err
    # The unsigned plan binds no key, but allowed_signers lists that key for its author.
    err = refused(proj, "approve", "plan.json", "--as", "bob", "--key", str(key_of(proj, "tester")))
    assert "is listed for tester, the plan's author, in allowed_signers, and self-approval is off" in err


def test_one_line_listing_the_author_under_two_names_does_not_let_them_approve(proj: CliProject) -> None:
    """``alice@example.com,alice@corp.example ... KEY`` (git's format): the author's key
    approves under neither name, at `approve` nor, written into the state, at `apply`."""
    signers = proj.root / "allowed_signers"
    alice = next(line for line in signers.read_text().splitlines() if line.startswith("alice@example.com "))
    signers.write_text(signers.read_text().replace(alice, alice.replace(
        "alice@example.com ", "alice@example.com,alice@corp.example ", 1)))
    _, digest = make_plan(proj, "production", STACKWRIGHT_USER="alice@example.com")
    err = refused(proj, "approve", "plan.json", "--as", "alice@corp.example",
                  "--key", str(key_of(proj, "alice@example.com")))
    assert "the approval of alice@corp.example would not count" in err
    assert "is listed for alice@example.com, the plan's author, in allowed_signers" in err
    inject_approval(proj, "alice@corp.example",
                    {"proof": "signed", "signature": signature(proj, "alice@example.com", digest)}, digest)
    err = refused(proj, "apply", "plan.json", "--yes")
    assert ("1 missing; not counted: alice@corp.example (signed with a key allowed_signers lists for "
            "alice@example.com, the plan's author)") in err
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")


def test_one_key_approving_as_two_identities_counts_once(tmp_path: Path) -> None:
    env = {"production": {"protected": True, "required_approvals": 2}}
    proj = make_project(tmp_path / "proj", env)
    signers = proj.root / "allowed_signers"
    bob = next(line for line in signers.read_text().splitlines() if line.startswith("bob "))
    signers.write_text(signers.read_text().replace(bob, bob.replace("bob ", "bob,bob@corp.example ", 1)))
    _, digest = make_plan(proj, "production")
    proj.ok("approve", "plan.json", *signed(proj, "bob"))
    err = refused(proj, "approve", "plan.json", "--as", "bob@corp.example", "--key", str(key_of(proj, "bob")))
    assert "counted once with bob: one key signed approvals under both names" in err
    inject_approval(proj, "bob@corp.example", {"proof": "signed", "signature": signature(proj, "bob", digest)},
                    digest)
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "needs 2 approval(s)" in err and "1 missing, approved by bob; not counted: bob@corp.example" in err
    proj.ok("approve", "plan.json", *signed(proj, "carol"))
    assert "Applied plan" in proj.ok("apply", "plan.json", "--yes")


def test_outside_a_repository_a_parent_folders_allowed_signers_is_not_trusted(tmp_path: Path) -> None:
    """A file someone else wrote above the project (``/tmp/allowed_signers``) listing their
    own key for bob: neither the approval nor the apply counts it."""
    (tmp_path / "shared").mkdir()
    proj = make_project(tmp_path / "shared" / "proj")
    (proj.root / "allowed_signers").unlink()
    mallory = ssh_key(tmp_path / "shared" / "keys", "mallory")[1]
    planted = tmp_path / "shared" / "allowed_signers"
    planted.write_text(f'bob namespaces="stackwright-plan" {mallory}\n')
    make_plan(proj, "production")
    err = refused(proj, "approve", "plan.json", "--as", "bob", "--key", str(key_of(proj, "mallory")))
    assert "the approval of bob would not count in environment 'production'" in err
    assert (f"({planted} is not used: outside a git repository only the project folder's allowed_signers "
            "counts, or that of the workspace listing the project)") in err
    inject_approval(proj, "bob", {"proof": "signed", "signature": signature(proj, "mallory", _hash(proj))},
                    _hash(proj))
    err = refused(proj, "apply", "plan.json", "--yes")
    assert "not counted: bob (signature refused:" in err and f"{planted} is not used" in err


def _hash(proj: CliProject) -> str:
    return str(json.loads(proj.file("plan.json").read_text())["hash"])
