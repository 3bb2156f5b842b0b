"""Who may approve which plan, and what counts: the rules of ``workflow.approvals``
called in process (the CLI tests in tests/workflow cover the commands around them).

Plans here are only their ``plan`` audit events: the rules read the author and the hash
from the state backend, never the file. Approvals recorded straight into the store stand
for what anyone with write access to the backend could record; each must be judged by
its proof, not by what the event claims.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from stackwright.program.project import Project
from stackwright.workflow import approvals
from stackwright.workflow.approvals import ApprovalRefused, NotApproved, UnknownPlan
from stackwright.workflow.signing import fingerprint, load_signing_key
from unit.workflow_projects import made_stacks, no_signing_key, session_of, write_project, write_stacks  # noqa: F401  (fixture)

PLAN = hashlib.sha256(b"the reviewed plan").hexdigest()
OTHER = hashlib.sha256(b"another plan").hexdigest()

ENVIRONMENTS: dict[str, Any] = {
    "dev": {},
    "production": {"protected": True, "required_approvals": 1},
    "team": {"required_approvals": 2, "approvers": ["alice", "group:sre"]},
    "mine": {"protected": True, "allow_self_approval": True},
    "github": {"protected": True, "github_approvals": True},
    "web": {"web_approvals": True},
    "webprod": {"protected": True, "web_approvals": True},
    "three": {"required_approvals": 3, "approvers": ["alice", "bob", "carol"]},
    "two": {"protected": True, "required_approvals": 2},
}
SIGNERS = {"alice": ["alice"], "bob": ["bob"], "carol": ["carol"], "mallory": ["mallory"],
           "tester": ["tester"], "shared": ["tester", "tester@work"], "octo": ["github:octocat"],
           "pair": ["carol@a", "carol@b"], "pair2": ["carol@b"]}


@pytest.fixture
def project(tmp_path: Path, no_signing_key: Path) -> Project:
    return write_project(tmp_path / "proj", ENVIRONMENTS,
                         groups={"sre": ["bob", "carol"], "reviewers": ["hubber"]}, signers=SIGNERS)


def key(project: Project, name: str) -> str:
    return str(project.root.parent / "keys" / name)


def make_plan(project: Project, stack: str, author: str = "tester", plan_hash: str = PLAN,
              signed_with: str | None = None, **data: Any) -> None:
    """What `stackwright plan --out` records: the plan's hash under its author's name."""
    if stack not in made_stacks(project):
        write_stacks(project, [stack])
    with session_of(project, stack, author) as s:
        extra = approvals.author_signature(s, plan_hash, key(project, signed_with)) if signed_with else {}
        s.store.record_event(stack, approvals.PLAN, author, {"plan_hash": plan_hash, **data, **extra})


def approve(project: Project, stack: str, who: str, *, signed_with: str | None = None,
            plan_hash: str = PLAN, **kwargs: Any) -> approvals.ApprovalStatus:
    comment = (kwargs.pop("comment"),) if "comment" in kwargs else ()
    with session_of(project, stack, who) as s:
        return approvals.approve(s, plan_hash, *comment, key=key(project, signed_with) if signed_with else None,
                                 **kwargs)


def reject(project: Project, stack: str, who: str, *comment: str, plan_hash: str = PLAN,
           web: str | None = None) -> approvals.ApprovalStatus:
    with session_of(project, stack, who) as s:
        return approvals.reject(s, plan_hash, *comment, web=web)


def inject(project: Project, stack: str, who: str, plan_hash: str = PLAN, **data: Any) -> None:
    """An approval written straight into the state backend."""
    with session_of(project, stack, who) as s:
        s.store.record_event(stack, approvals.APPROVE, who, {"plan_hash": plan_hash, **data})


def require(project: Project, stack: str, plan_hash: str = PLAN) -> approvals.ApprovalStatus:
    with session_of(project, stack, "deployer") as s:
        return approvals.require_approved(s, plan_hash)


def refusal(project: Project, stack: str, plan_hash: str = PLAN) -> str:
    with pytest.raises(NotApproved) as caught:
        require(project, stack, plan_hash)
    return f"{caught.value.message} | {caught.value.hint}"


def signature(project: Project, name: str, plan_hash: str = PLAN) -> str:
    return load_signing_key(Path(key(project, name))).sign(plan_hash.encode())


# --- the author -------------------------------------------------------------------------


def test_the_author_may_not_approve_their_own_plan(project: Project) -> None:
    make_plan(project, "production")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "production", "tester", signed_with="tester")
    assert caught.value.message == (f"tester made plan {PLAN[:12]} and may not approve it: environment "
                                 "'production' does not allow self-approval")
    assert caught.value.hint == "ask anyone but tester (the author) to approve it"


def test_an_authors_approval_written_into_the_state_does_not_count(project: Project) -> None:
    make_plan(project, "production")
    inject(project, "production", "tester", proof="signed", signature=signature(project, "tester"))
    assert refusal(project, "production") == (
        f"environment 'production' needs 1 approval(s) of plan {PLAN[:12]}; 1 missing; not counted: "
        "tester (the plan's author) | ask anyone but tester (the author) to run `stackwright approve FILE`")


def test_self_approval_counts_where_the_environment_allows_it(project: Project) -> None:
    make_plan(project, "mine")
    done = approve(project, "mine", "tester", signed_with="tester")
    assert done.approved_by == ("tester",) and done.missing == 0
    assert require(project, "mine").approved_by == ("tester",)


def test_outside_protected_environments_the_author_may_approve(project: Project) -> None:
    make_plan(project, "dev")
    assert approve(project, "dev", "tester").approved_by == ("tester",)


def test_the_key_that_signed_the_plan_cannot_approve_it_under_another_name(project: Project) -> None:
    make_plan(project, "production", signed_with="shared")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "production", "tester@work", signed_with="shared")
    shared = fingerprint(load_signing_key(Path(key(project, "shared"))).blob)
    assert caught.value.message.endswith(f"key {shared} signed the plan, and self-approval is off")
    inject(project, "production", "tester@work", proof="signed", signature=signature(project, "shared"))
    assert "not counted: tester@work (signed with the key that signed the plan)" in refusal(project, "production")


def test_a_plan_signed_with_a_key_listed_only_for_someone_else_binds_that_key(project: Project) -> None:
    make_plan(project, "production", author="tester", signed_with="bob")
    bobs = fingerprint(load_signing_key(Path(key(project, "bob"))).blob)
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "production", "bob", signed_with="bob")
    assert caught.value.message.endswith(f"key {bobs} signed the plan, and self-approval is off")
    assert approve(project, "production", "alice", signed_with="alice").approved_by == ("alice",)


def test_the_plans_signing_key_may_approve_where_self_approval_is_allowed(project: Project) -> None:
    make_plan(project, "mine", signed_with="shared")
    assert approve(project, "mine", "tester@work", signed_with="shared").approved_by == ("tester@work",)


def test_an_unsigned_plan_binds_no_key(project: Project) -> None:
    make_plan(project, "production", author="alice")
    assert approve(project, "production", "bob", signed_with="bob").approved_by == ("bob",)


def test_a_plan_signature_that_does_not_verify_binds_no_key(project: Project) -> None:
    make_plan(project, "production", author="alice", signature=signature(project, "bob", OTHER))
    assert approve(project, "production", "bob", signed_with="bob").approved_by == ("bob",)


def test_a_key_listed_for_the_author_cannot_approve_under_another_name_of_its_line(project: Project) -> None:
    """``tester,tester@work ... KEY``: one key, so one person, whichever name approves."""
    make_plan(project, "production")
    shared = fingerprint(load_signing_key(Path(key(project, "shared"))).blob)
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "production", "tester@work", signed_with="shared")
    assert caught.value.message == (
        f"the approval of tester@work would not count in environment 'production': key {shared} is listed "
        "for tester, the plan's author, in allowed_signers, and self-approval is off")
    assert caught.value.hint == "ask anyone but tester (the author) to approve it"
    inject(project, "production", "tester@work", proof="signed", signature=signature(project, "shared"))
    assert "not counted: tester@work (signed with a key allowed_signers lists for tester, the plan's author)" \
        in refusal(project, "production")


def test_a_key_listed_for_the_author_on_another_line_cannot_approve(project: Project) -> None:
    signers = project.root / "allowed_signers"
    alice = next(line for line in signers.read_text().splitlines() if line.startswith("alice "))
    signers.write_text(signers.read_text() + alice.replace("alice ", "alice@corp.example ", 1) + "\n")
    make_plan(project, "production", author="alice")
    with pytest.raises(ApprovalRefused, match="is listed for alice, the plan's author"):
        approve(project, "production", "alice@corp.example", signed_with="alice")
    assert approve(project, "production", "bob", signed_with="bob").approved_by == ("bob",)


def test_apply_judges_the_authors_keys_as_allowed_signers_lists_them_then(project: Project) -> None:
    """An approval that counted stops counting once its key is listed for the author:
    `apply` reads allowed_signers again."""
    make_plan(project, "production", author="alice")
    assert approve(project, "production", "bob", signed_with="bob").approved_by == ("bob",)
    assert require(project, "production").approved_by == ("bob",)
    signers = project.root / "allowed_signers"
    bob = next(line for line in signers.read_text().splitlines() if line.startswith("bob "))
    signers.write_text(signers.read_text() + bob.replace("bob ", "alice ", 1) + "\n")
    assert "not counted: bob (signed with a key allowed_signers lists for alice, the plan's author)" \
        in refusal(project, "production")


def test_the_authors_keys_may_approve_where_self_approval_is_allowed(project: Project) -> None:
    make_plan(project, "mine")
    assert approve(project, "mine", "tester@work", signed_with="shared").approved_by == ("tester@work",)


def test_one_key_approving_under_two_names_counts_once(project: Project) -> None:
    make_plan(project, "two", author="alice")
    assert approve(project, "two", "carol@a", signed_with="pair").approved_by == ("carol@a",)
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "two", "carol@b", signed_with="pair")
    assert caught.value.message == ("the approval of carol@b would not count in environment 'two': counted once "
                                    "with carol@a: one key signed approvals under both names")
    inject(project, "two", "carol@b", proof="signed", signature=signature(project, "pair"))
    assert refusal(project, "two").startswith(
        f"environment 'two' needs 2 approval(s) of plan {PLAN[:12]}; 1 missing, approved by carol@a; not counted: "
        "carol@b (counted once with carol@a: one key signed approvals under both names)")
    assert approve(project, "two", "bob", signed_with="bob").approved_by == ("carol@a", "bob")
    assert require(project, "two").approved_by == ("carol@a", "bob")


def test_approvals_linked_by_keys_and_names_count_as_one_person(project: Project) -> None:
    """carol@a (key pair), carol@b (key pair2), then carol@b again with key pair: all
    three are one person's, counted once."""
    make_plan(project, "two", author="alice")
    for who, name in (("carol@a", "pair"), ("carol@b", "pair2"), ("carol@b", "pair")):
        inject(project, "two", who, proof="signed", signature=signature(project, name))
    assert "1 missing, approved by carol@a; not counted: carol@b (counted once with carol@a" \
        in refusal(project, "two")


def test_the_author_is_who_recorded_the_plan_not_what_the_event_says(project: Project) -> None:
    make_plan(project, "production", author="alice", created_by="bob")
    with pytest.raises(ApprovalRefused, match="alice made plan"):
        approve(project, "production", "alice", signed_with="alice")
    assert approve(project, "production", "bob", signed_with="bob").approved_by == ("bob",)


def test_a_co_author_may_not_approve_the_plan_either(project: Project) -> None:
    """CI makes a merged pull request's plan as its author and names whoever merged it
    as a co-author (docs/ci.md): neither may approve it where self-approval is off."""
    make_plan(project, "production", author="tester", co_authors=["bob", "tester", 7])
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "production", "bob", signed_with="bob")
    assert caught.value.message == (f"bob is a co-author of plan {PLAN[:12]} (made by tester) and may not "
                                    "approve it: environment 'production' does not allow self-approval")
    assert caught.value.hint == "ask anyone but tester, bob (the authors) to approve it"
    inject(project, "production", "bob", proof="signed", signature=signature(project, "bob"))
    assert refusal(project, "production") == (
        f"environment 'production' needs 1 approval(s) of plan {PLAN[:12]}; 1 missing; not counted: "
        "bob (a co-author of the plan) | ask anyone but tester, bob (the authors) to run `stackwright approve FILE`")
    done = approve(project, "production", "alice", signed_with="alice")
    assert done.approved_by == ("alice",) and done.authors == ("tester", "bob")


def test_a_key_listed_for_a_co_author_cannot_approve_under_another_name(project: Project) -> None:
    signers = project.root / "allowed_signers"
    bob = next(line for line in signers.read_text().splitlines() if line.startswith("bob "))
    signers.write_text(signers.read_text() + bob.replace("bob ", "bob@corp.example ", 1) + "\n")
    make_plan(project, "production", author="tester", co_authors=["bob"])
    with pytest.raises(ApprovalRefused, match="is listed for bob, a co-author of the plan, in allowed_signers"):
        approve(project, "production", "bob@corp.example", signed_with="bob")
    inject(project, "production", "bob@corp.example", proof="signed", signature=signature(project, "bob"))
    assert "not counted: bob@corp.example (signed with a key allowed_signers lists for bob, a co-author of the plan)" \
        in refusal(project, "production")


def test_a_co_author_may_approve_where_self_approval_is_allowed(project: Project) -> None:
    make_plan(project, "mine", co_authors=["bob"])
    assert approve(project, "mine", "bob", signed_with="bob").approved_by == ("bob",)


def test_co_authors_come_from_the_environment_when_the_session_opens(project: Project,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write_stacks(project, ["production"])
    monkeypatch.setenv("STACKWRIGHT_CO_AUTHORS", " bob, tester,,carol ,bob")
    with session_of(project, "production", "tester") as s:
        monkeypatch.setenv("STACKWRIGHT_CO_AUTHORS", "")  # e.g. the program's code: too late
        assert s.co_authors == ("bob", "carol")  # the author left out
    monkeypatch.delenv("STACKWRIGHT_CO_AUTHORS")
    with session_of(project, "production", "tester") as s:
        assert s.co_authors == ()


def test_the_author_signs_the_plan_with_the_key_given_never_with_gits(project: Project,
                                                                      no_signing_key: Path) -> None:
    no_signing_key.write_text(f"[user]\n\tsigningkey = {key(project, 'tester')}\n")
    write_stacks(project, ["production"])
    with session_of(project, "production", "tester") as s:
        assert approvals.author_signature(s, PLAN, None) == {}
        signed = approvals.author_signature(s, PLAN, key(project, "tester"))
    tester = load_signing_key(Path(key(project, "tester")))
    assert signed["key"] == fingerprint(tester.blob)
    assert signed["signature"].startswith("-----BEGIN SSH SIGNATURE-----")


# --- who may approve --------------------------------------------------------------------


def test_an_unlisted_identity_may_not_approve(project: Project) -> None:
    make_plan(project, "team")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "team", "mallory")
    assert caught.value.message == "mallory is not an approver of environment 'team'"
    assert caught.value.hint == "approvers: alice, group:sre (set in stackwright.yaml)"


def test_listed_approvers_and_group_members_count_once_each(project: Project) -> None:
    make_plan(project, "team")
    approve(project, "team", "bob")
    approve(project, "team", "bob")
    assert refusal(project, "team") == (
        f"environment 'team' needs 2 approval(s) of plan {PLAN[:12]}; 1 missing, approved by bob | ask "
        "alice, group:sre to run `stackwright approve FILE`")
    done = approve(project, "team", "alice")
    assert done.approved_by == ("bob", "alice") and done.missing == 0
    assert require(project, "team").approved_by == ("bob", "alice")


def test_an_unlisted_approval_written_into_the_state_does_not_count(project: Project) -> None:
    make_plan(project, "team")
    approve(project, "team", "alice")
    inject(project, "team", "mallory")
    inject(project, "team", "mallory")
    assert refusal(project, "team").startswith(
        f"environment 'team' needs 2 approval(s) of plan {PLAN[:12]}; 1 missing, approved by alice; "
        "not counted: mallory (not an approver) |")


def test_a_refusal_lists_everyone_approved_and_everyone_not_counted(project: Project) -> None:
    make_plan(project, "three")
    approve(project, "three", "alice")
    approve(project, "three", "bob")
    inject(project, "three", "mallory")
    inject(project, "three", "tester")
    assert refusal(project, "three").startswith(
        f"environment 'three' needs 3 approval(s) of plan {PLAN[:12]}; 1 missing, approved by alice, bob; "
        "not counted: mallory (not an approver), tester (the plan's author) |")


def test_approvals_are_for_that_exact_plan(project: Project) -> None:
    make_plan(project, "dev", author="alice")
    make_plan(project, "dev", author="alice", plan_hash=OTHER)
    approve(project, "dev", "bob", plan_hash=OTHER)
    with session_of(project, "dev", "bob") as s:
        assert approvals.status(s, PLAN).approved_by == ()
        assert approvals.status(s, OTHER).approved_by == ("bob",)
        assert (approvals.status(s, PLAN).plan_hash, approvals.status(s, OTHER).plan_hash) == (PLAN, OTHER)


def test_approvals_recorded_under_another_stack_do_not_count(project: Project) -> None:
    """An approval names a plan by its hash, and counts only in the audit log of the stack
    the plan was made for: approving the same hash elsewhere approves nothing here."""
    make_plan(project, "team")
    make_plan(project, "dev", plan_hash=OTHER)
    inject(project, "dev", "alice")
    inject(project, "dev", "bob")
    with session_of(project, "team", "x") as s:
        current = approvals.status(s, PLAN)
    assert (current.approved_by, current.uncounted, current.missing) == ((), (), 2)
    assert refusal(project, "team").startswith(f"environment 'team' needs 2 approval(s) of plan {PLAN[:12]}; "
                                               "2 missing |")


def test_a_plan_never_recorded_is_unknown(project: Project) -> None:
    make_plan(project, "dev")
    with pytest.raises(UnknownPlan) as caught:
        approve(project, "dev", "bob", plan_hash=OTHER)
    assert caught.value.message == f"plan {OTHER[:12]} was never recorded for stack 'dev'"
    assert caught.value.hint == ("it was made against another state backend, or edited and re-hashed; "
                                 "make it with `stackwright plan --out FILE`")
    with session_of(project, "dev", "bob") as s, pytest.raises(UnknownPlan):
        approvals.plan_event(s.store, "team", PLAN)


def test_who_may_approve_in_words(project: Project) -> None:
    words = approvals.who_may_approve
    env = approvals.environment_for(project, "team")
    assert words(project, env, "tester") == "alice, group:sre"
    env.allow_self_approval = False
    assert words(project, env, "tester") == "alice, group:sre (not tester, the author)"
    assert words(project, approvals.environment_for(project, "dev"), "tester") == "anyone"
    assert words(project, env, "tester", ("bob",)) == "alice, group:sre (not tester, bob, the authors)"


# --- proofs in protected environments ---------------------------------------------------


def test_a_protected_environment_refuses_a_claimed_identity(project: Project) -> None:
    make_plan(project, "production")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "production", "bob")
    assert caught.value.message == "environment 'production' is protected: an approval must be signed"
    assert "--key ~/.ssh/id_ed25519" in str(caught.value.hint)
    inject(project, "production", "bob", proof="claimed")
    assert "not counted: bob (unsigned (an identity claimed with --as))" in refusal(project, "production")


def test_a_signed_approval_counts_and_records_its_key(project: Project) -> None:
    make_plan(project, "production")
    done = approve(project, "production", "bob", signed_with="bob", comment="looks right")
    assert done.approved_by == ("bob",)
    with session_of(project, "production", "bob") as s:
        [event] = s.store.events("production", kinds=(approvals.APPROVE,))
    bob = fingerprint(load_signing_key(Path(key(project, "bob"))).blob)
    assert event.who == "bob"
    assert {k: event.data[k] for k in ("plan_hash", "author", "comment", "environment", "proof", "key")} == {
        "plan_hash": PLAN, "author": "tester", "comment": "looks right", "environment": "production",
        "proof": "signed", "key": bob}
    assert require(project, "production").approved_by == ("bob",)


def test_the_configured_git_signing_key_signs_in_protected_environments_only(
        project: Project, no_signing_key: Path) -> None:
    no_signing_key.write_text(f"[user]\n\tsigningkey = {key(project, 'bob')}.pub\n")
    make_plan(project, "production")
    assert approve(project, "production", "bob").approved_by == ("bob",)
    make_plan(project, "dev")
    approve(project, "dev", "bob")
    with session_of(project, "dev", "bob") as s:
        [event] = s.store.events("dev", kinds=(approvals.APPROVE,))
    assert event.data["proof"] == "claimed" and "signature" not in event.data


def test_a_key_not_listed_for_the_approver_is_refused(project: Project) -> None:
    make_plan(project, "production")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "production", "bob", signed_with="mallory")
    assert caught.value.message.startswith("the approval of bob would not count in environment 'production': "
                                        "signature refused: key SHA256:")
    assert caught.value.message.endswith("is not listed for bob in allowed_signers")
    assert caught.value.hint == ("sign with your SSH key: --key ~/.ssh/id_ed25519 (or STACKWRIGHT_SIGNING_KEY, "
                                 "or git's user.signingkey); its public key must be listed for you in "
                                 "allowed_signers")


@pytest.mark.parametrize(("forgery", "why"), [
    ("other plan", "the signature does not match this plan (forged, or made for another)"),
    ("empty signature", "it is not an SSH signature"),
    ("no signature", "it is not an SSH signature"),
    ("garbage", "it is not an SSH signature"),
])
def test_a_forged_signature_in_the_state_does_not_count(project: Project, forgery: str, why: str) -> None:
    make_plan(project, "production")
    sig = {"other plan": {"signature": signature(project, "bob", OTHER)}, "empty signature": {"signature": ""},
           "no signature": {}, "garbage": {"signature": "x"}}[forgery]
    inject(project, "production", "bob", proof="signed", **sig)
    assert f"not counted: bob (signature refused: {why}) |" in refusal(project, "production")


def test_a_plan_without_signers_file_counts_no_signature(tmp_path: Path, no_signing_key: Path) -> None:
    project = write_project(tmp_path / "proj", ENVIRONMENTS, signers=SIGNERS)
    make_plan(project, "production")
    (project.root / "allowed_signers").unlink()
    with pytest.raises(ApprovalRefused, match="is not listed for bob"):
        approve(project, "production", "bob", signed_with="bob")


# --- GitHub comments -------------------------------------------------------------------


def payload(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(content))
    return path


def comment(login: str) -> dict[str, Any]:
    return {"comment": {"user": {"login": login}, "html_url": "https://example.test/c/1"},
            "sender": {"login": "someone-else"}}


def test_a_github_comment_counts_for_a_listed_login(project: Project, tmp_path: Path) -> None:
    make_plan(project, "github")
    done = approve(project, "github", "ci-bot", github_event=payload(tmp_path, comment("octocat")))
    assert done.approved_by == ("octocat",)
    with session_of(project, "github", "x") as s:
        [event] = s.store.events("github", kinds=(approvals.APPROVE,))
    assert event.data["proof"] == "github" and event.data["comment_url"] == "https://example.test/c/1"


def test_a_github_login_listed_in_a_group_counts(project: Project, tmp_path: Path) -> None:
    make_plan(project, "github")
    assert approve(project, "github", "ci-bot", github_event=payload(tmp_path, comment("hubber"))).approved_by \
        == ("hubber",)


def test_a_github_comment_from_an_unlisted_login_is_refused(project: Project, tmp_path: Path) -> None:
    make_plan(project, "github")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "github", "ci-bot", github_event=payload(tmp_path, comment("stranger")))
    assert caught.value.message.endswith(": allowed_signers does not list stranger")


def test_a_github_comment_by_the_author_is_refused(project: Project, tmp_path: Path) -> None:
    make_plan(project, "github", author="octocat")
    with pytest.raises(ApprovalRefused, match="octocat made plan"):
        approve(project, "github", "ci-bot", github_event=payload(tmp_path, comment("octocat")))


def test_github_comments_do_not_count_where_not_enabled(project: Project, tmp_path: Path) -> None:
    make_plan(project, "production")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "production", "ci-bot", github_event=payload(tmp_path, comment("octocat")))
    assert caught.value.message.endswith(": a GitHub comment, and this environment counts signed approvals only")


def test_a_label_event_names_its_sender(tmp_path: Path) -> None:
    assert approvals.github_commenter(payload(tmp_path, {"sender": {"login": "labeler"}})) == ("labeler", "")


@pytest.mark.parametrize("content", [{"comment": {"user": {}}}, {"sender": {"login": ""}}, [1, 2],
                                     {"comment": {"user": "octocat"}}, {"sender": {"login": 7}}])
def test_a_payload_naming_no_commenter_is_refused(tmp_path: Path, content: Any) -> None:
    with pytest.raises(ApprovalRefused) as caught:
        approvals.github_commenter(payload(tmp_path, content))
    assert caught.value.message == f"the GitHub event payload {tmp_path / 'event.json'} names no commenter"
    assert caught.value.hint == "run approve --github-event only from an issue_comment or label event"


def test_an_unreadable_payload_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "event.json"
    broken.write_text("{not json")
    for path in (broken, tmp_path / "missing.json"):
        with pytest.raises(ApprovalRefused) as caught:
            approvals.github_commenter(path)
        assert caught.value.message.startswith(f"cannot read the GitHub event payload {path}: ")
        assert caught.value.hint == 'pass --github-event "$GITHUB_EVENT_PATH" inside GitHub Actions'


# --- the web view ----------------------------------------------------------------------


def test_web_approvals_count_only_where_the_environment_trusts_the_web(project: Project) -> None:
    make_plan(project, "dev")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "dev", "bob", web="proxy")
    assert "does not count web approvals (`web_approvals: true` is not set)" in caught.value.message
    inject(project, "dev", "bob", proof="web", auth="proxy")
    with session_of(project, "dev", "bob") as s:
        assert approvals.status(s, PLAN).uncounted[0][0] == "bob"


def test_web_approvals_count_from_the_proxy_or_in_unprotected_development(project: Project) -> None:
    make_plan(project, "web")
    assert approve(project, "web", "bob", web="dev").approved_by == ("bob",)
    with session_of(project, "web", "x") as s:
        [event] = s.store.events("web", kinds=(approvals.APPROVE,))
    assert (event.who, event.data["proof"], event.data["source"], event.data["auth"]) == ("bob", "web", "web", "dev")
    assert "signature" not in event.data
    make_plan(project, "webprod")
    assert approve(project, "webprod", "bob", web="proxy").approved_by == ("bob",)


def test_a_web_approval_in_development_mode_does_not_count_where_protected(project: Project) -> None:
    make_plan(project, "webprod")
    with pytest.raises(ApprovalRefused) as caught:
        approve(project, "webprod", "bob", web="dev")
    assert caught.value.message == ("the approval of bob would not count in environment 'webprod': made in the "
                                    "web view's local development mode, where nobody is authenticated")


# --- rejections -------------------------------------------------------------------------


def test_a_rejection_blocks_until_approved_again(project: Project) -> None:
    make_plan(project, "team")
    approve(project, "team", "alice")
    approve(project, "team", "bob")
    reject(project, "team", "carol", "not during the freeze")
    message = refusal(project, "team")
    assert message.startswith(f"plan {PLAN[:12]} was rejected by carol at ")
    assert "not during the freeze | make a new plan" in message
    approve(project, "team", "bob")
    assert require(project, "team").approved_by == ("alice", "bob")


def test_a_rejection_without_comment_says_so(project: Project) -> None:
    make_plan(project, "dev")
    approve(project, "dev", "bob")
    assert reject(project, "dev", "tester").rejection is not None
    assert ": no comment |" in refusal(project, "dev")


def test_a_rejection_before_the_last_approval_does_not_block(project: Project) -> None:
    make_plan(project, "dev")
    reject(project, "dev", "bob", "first draft")
    approve(project, "dev", "carol")
    assert require(project, "dev").rejection is None


def test_only_approvers_and_the_author_may_reject(project: Project) -> None:
    make_plan(project, "team")
    with pytest.raises(ApprovalRefused) as caught:
        reject(project, "team", "mallory")
    assert caught.value.message == "mallory is not an approver of environment 'team' and may not reject its plans"
    assert caught.value.hint == "approvers: alice, group:sre (set in stackwright.yaml)"
    assert reject(project, "team", "tester", "withdrawn").rejection is not None
    assert reject(project, "team", "carol").rejection is not None


def test_a_web_rejection_is_recorded_as_such(project: Project) -> None:
    make_plan(project, "dev")
    reject(project, "dev", "carol", "also no")
    reject(project, "dev", "bob", "no", web="proxy")
    with session_of(project, "dev", "x") as s:
        first, event = s.store.events("dev", kinds=(approvals.REJECT,))
    assert "source" not in first.data and "auth" not in first.data
    assert (event.who, event.data["source"], event.data["auth"], event.data["comment"], event.data["author"]) == (
        "bob", "web", "proxy", "no", "tester")


def test_an_unapproved_plan_where_none_are_needed_may_apply(project: Project) -> None:
    make_plan(project, "dev")
    assert require(project, "dev").missing == 0


# --- the audit log -------------------------------------------------------------------


@pytest.fixture
def history(project: Project) -> Iterator[list[approvals.AuditRow]]:
    make_plan(project, "team", counts={"create": 2, "update": 1}, path="plan.json")
    approve(project, "team", "alice", comment="ship it")
    approve(project, "team", "bob")
    reject(project, "team", "carol", "too early")
    reject(project, "team", "tester")
    with session_of(project, "team", "deployer") as s:
        s.store.record_event("team", "refresh", "deployer", {})
        s.store.record_event("team", "apply", "deployer", {"plan_hash": PLAN, "result": "succeeded",
                                                         "checkpoint": 3})
        s.store.record_event("team", "up", "deployer", {"result": "failed", "urn": "team::proj::t::a",
                                                      "emergency": "site down"})
        s.store.record_event("team", "lock", "deployer", {})
        s.store.record_event("dev", approvals.PLAN, "deployer", {"plan_hash": OTHER})
        yield approvals.audit(s.store, "team")


def test_audit_lists_plans_reviews_and_applies(history: list[approvals.AuditRow]) -> None:
    assert [(r.kind, r.who, r.plan_hash, r.detail) for r in history] == [
        ("plan", "tester", PLAN, "2 create, 1 update -> plan.json"),
        ("approve", "alice", PLAN, "[claimed] ship it"),
        ("approve", "bob", PLAN, "[claimed]"),
        ("reject", "carol", PLAN, "too early"),
        ("reject", "tester", PLAN, ""),
        ("refresh", "deployer", "", ""),
        ("apply", "deployer", PLAN, "succeeded (checkpoint 3)"),
        ("up", "deployer", "", "failed team::proj::t::a EMERGENCY: site down"),
    ]


def test_audit_json_has_utc_times_and_no_empty_hash(history: list[approvals.AuditRow]) -> None:
    up = history[-1].to_json()
    assert up["plan_hash"] is None and up["stack"] == "team" and up["who"] == "deployer"
    assert up["at"] == datetime.fromtimestamp(history[-1].at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert up["data"]["emergency"] == "site down" and up["detail"].endswith("EMERGENCY: site down")
    assert history[0].to_json()["plan_hash"] == PLAN and history[0].to_json()["kind"] == "plan"


def test_audit_of_every_stack(project: Project) -> None:
    make_plan(project, "dev")
    make_plan(project, "team", plan_hash=OTHER, path="x.json")
    with session_of(project, "dev", "x") as s:
        rows = approvals.audit(s.store)
    assert [(r.stack, r.detail) for r in rows] == [("dev", "no changes -> "), ("team", "no changes -> x.json")]


def test_a_signed_approval_shows_its_key_in_the_audit(project: Project) -> None:
    make_plan(project, "production")
    approve(project, "production", "bob", signed_with="bob", comment="ok")
    with session_of(project, "production", "x") as s:
        detail = approvals.audit(s.store, "production")[-1].detail
    bob = fingerprint(load_signing_key(Path(key(project, "bob"))).blob)
    assert detail == f"[signed {bob}] ok"


def test_times_are_shown_to_the_minute() -> None:
    at = datetime(2026, 5, 1, 14, 3, 59).timestamp()
    assert approvals.when(at) == "at 2026-05-01 14:03"
    assert approvals.iso_time(0.0) == "1970-01-01T00:00:00Z"
