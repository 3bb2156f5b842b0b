"""Approvals, rejections and the audit log of saved plans.

Everything is an append-only event in the stack's state backend, so that the record
of who planned, approved, rejected and applied what lives where the state lives, not
in a file anyone can edit. An approval names a plan by its content hash: change one
byte of the plan and it is another plan, with no approvals.

The author of a plan is whoever recorded its ``plan`` event, not what the file says:
the file's hash is plain SHA-256, which anyone who edits it can recompute. The event
may name co-authors too (``CO_AUTHORS``: in CI, whoever merged another's pull request),
who are refused like the author where self-approval is off.

In a protected environment an approval counts only with a proof: an SSH signature of
the plan hash by a key that ``allowed_signers`` lists for the approver (``signing``),
or, where the environment allows it, an ``/approve`` comment whose author GitHub named
in the event payload. Elsewhere ``--as`` is enough and is recorded as "claimed".
docs/trust.md says who can forge what.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stackwright.errors import StackwrightError
from stackwright.operations.session import StackSession
from stackwright.program.project import Project
from stackwright.state.records import Event
from stackwright.state.store import StateStore
from stackwright.workflow import signing
from stackwright.workflow.environments import Environment, environment_for, groups, may_approve

PLAN, APPROVE, REJECT, APPLY = "plan", "approve", "reject", "apply"
ATTEMPT = "attempt"
"""A change that failed or was refused before it applied anything (``gateway``): it
made no checkpoint, so this event is all that is left of it."""
ROTATE = "rotate"
"""`secrets rotate`, recorded in every stack it re-encrypted."""
AUDITED = (PLAN, APPROVE, REJECT, APPLY, "up", "destroy", "rollback", "import", "refresh", "state-rm", "stack-rm",
           ROTATE, ATTEMPT)
"""Event kinds `audit` lists: saved plans and their reviews, every apply and state edit,
every rotation of secrets, and every change that stopped before applying."""
SHORT = 12
"""Hex digits of a plan hash shown to people: enough to tell plans apart."""
CO_AUTHORS = "co_authors"
"""Key of a ``plan`` event's data: identities that count as the plan's authors too
(``session.CO_AUTHORS_ENV`` when it was made)."""
SIGNED, CLAIMED, GITHUB, WEB = "signed", "claimed", "github", "web"
"""How an approval proves who made it (``proof`` in its event)."""


class ApprovalError(StackwrightError):
    """Base of the refusals of this module."""


class UnknownPlan(ApprovalError):
    """The plan's hash is not in the stack's audit log."""


class ApprovalRefused(ApprovalError):
    """This identity may not approve or reject this plan."""


class NotApproved(ApprovalError):
    """The plan lacks approvals, or was rejected, and may not be applied."""


@dataclass(frozen=True)
class ApprovalStatus:
    """Where a plan stands: who made it, who approved it, whether it was rejected."""

    plan_hash: str
    environment: Environment
    author: str
    approved_by: tuple[str, ...]
    """Distinct identities whose approval counts (eligible under the environment's rules)."""
    rejection: Event | None
    """A rejection later than the last approval: the plan may not be applied."""
    uncounted: tuple[tuple[str, str], ...] = ()
    """(identity, why) of approvals that do not count: unsigned, unknown key, forged,
    the author's own, not an approver."""
    author_key: str | None = None
    """The fingerprint of the key that signed the plan, when its author signed it."""
    co_authors: tuple[str, ...] = ()
    """Others the ``plan`` event names as its authors too (``CO_AUTHORS``)."""

    @property
    def authors(self) -> tuple[str, ...]:
        """The author and the co-authors: none of them may approve the plan where
        self-approval is off."""
        return (self.author, *self.co_authors)

    @property
    def needed(self) -> int:
        return self.environment.approvals_needed

    @property
    def missing(self) -> int:
        return max(0, self.needed - len(self.approved_by))


def plan_event(store: StateStore, stack: str, plan_hash: str) -> Event:
    """The ``plan`` event that recorded this plan: proof it was made by `plan` against
    this stack's backend, and the identity of its author."""
    for event in reversed(store.events(stack, kinds=(PLAN,))):
        if event.data.get("plan_hash") == plan_hash:
            return event
    raise UnknownPlan(
        f"plan {plan_hash[:SHORT]} was never recorded for stack {stack!r}",
        hint="it was made against another state backend, or edited and re-hashed; "
        "make it with `stackwright plan --out FILE`",
    )


def status(session: StackSession, plan_hash: str) -> ApprovalStatus:
    """The plan's approvals and rejections as the environment's rules count them now."""
    env = environment_for(session.project, session.stack)
    made, reviews = _reviews(session, plan_hash)
    return judge(session.project, env, made, reviews, plan_hash)


def _reviews(session: StackSession, plan_hash: str) -> tuple[Event, list[Event]]:
    """The plan's ``plan`` event, and its approvals and rejections, oldest first."""
    made = plan_event(session.store, session.stack, plan_hash)
    return made, [e for e in session.store.events(session.stack, kinds=(APPROVE, REJECT))
                  if e.data.get("plan_hash") == plan_hash]


def judge(project: Project, env: Environment, made: Event, reviews: list[Event], plan_hash: str) -> ApprovalStatus:
    """Count the approvals and rejections ``reviews`` (of this plan, oldest first) of the
    plan whose ``plan`` event is ``made``, under ``env``'s rules."""
    author, author_key = made.who, plan_key(made, plan_hash)
    co_authors = recorded_co_authors(made)
    approvals = [e for e in reviews if e.kind == APPROVE]
    last_approval = approvals[-1].id if approvals else 0
    rejection = next((e for e in reversed(reviews) if e.kind == REJECT and e.id > last_approval), None)
    own: dict[str, str] | None = None  # read once an approval is signed
    eligible: list[tuple[str, str | None]] = []
    uncounted: list[tuple[str, str]] = []
    for event in approvals:
        why = proof_problem(project, env, event, plan_hash)
        if why is None and not _eligible(project, env, event.who, (author, *co_authors)):
            why = ("the plan's author" if event.who == author else
                   "a co-author of the plan" if event.who in co_authors else "not an approver")
        key = signed_key(event, plan_hash) if why is None else None
        if key is not None and own is None:
            own = authors_keys(project, env, (author, *co_authors), author_key)
        if why is None and key is not None and own is not None and key in own:
            why = ("signed with the key that signed the plan" if key == author_key
                   else f"signed with a key {SIGNERS} lists for {own[key]}, {_role(own[key], author)}")
        if why is None:
            eligible.append((event.who, key))
        else:
            uncounted.append((event.who, why))
    counted, merged = one_each(eligible)
    return ApprovalStatus(plan_hash, env, author, tuple(counted), rejection,
                          tuple(dict.fromkeys(uncounted + merged)), author_key, co_authors)


def recorded_co_authors(made: Event) -> tuple[str, ...]:
    """The co-authors a ``plan`` event names (``CO_AUTHORS``), its author left out."""
    names = made.data.get(CO_AUTHORS)
    if not isinstance(names, list):
        return ()
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n and n != made.who))


def authors_keys(project: Project, env: Environment, authors: tuple[str, ...],
                 author_key: str | None) -> dict[str, str]:
    """The fingerprints of the keys that may not approve the plan where self-approval is
    off (none where it is allowed), each with the author it is the key of: the key that
    signed the plan (its author's), and every key allowed_signers lists for an author
    (the plan's author and its co-authors), on any line and under whatever other names
    that line lists (one key is one person, so ``alice,alice@corp ssh-ed25519 K`` makes
    ``K`` the author's under both names), whatever namespaces it is listed for."""
    if env.self_approval_allowed:
        return {}
    own: dict[str, str] = {}
    for signer in project_signers(project):
        name = next((author for author in authors if signer.names(author)), None)
        if name is not None:
            own.setdefault(signing.fingerprint(signer.blob), name)
    if author_key:
        own[author_key] = authors[0]
    return own


def _role(name: str, author: str) -> str:
    return "the plan's author" if name == author else "a co-author of the plan"


def one_each(eligible: list[tuple[str, str | None]]) -> tuple[list[str], list[tuple[str, str]]]:
    """One count per person: the approvals of one identity are one person's, and so are
    approvals signed with one key, whatever identities they name (and, through them,
    every approval linked to those by an identity or a key). Each such group counts
    once, under the identity of its first approval; (identity, why) of the others."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for who, key in eligible:
        if key is not None:
            parent[root(f"id:{who}")] = root(f"key:{key}")
    first: dict[str, str] = {}
    counted: list[str] = []
    merged: list[tuple[str, str]] = []
    for who, _ in eligible:
        group = root(f"id:{who}")
        if group not in first:
            first[group] = who
            counted.append(who)
        elif first[group] != who:
            merged.append((who, f"counted once with {first[group]}: one key signed approvals under both names"))
    return counted, merged


def signed_key(event: Event, plan_hash: str) -> str | None:
    """The fingerprint of the key whose valid signature of this plan a signed approval
    carries, whoever allowed_signers lists it for, or None (not signed, or a signature
    that does not verify): it tells which person approved, whatever name is claimed."""
    return plan_key(event, plan_hash) if event.data.get("proof") == SIGNED else None


def plan_key(made: Event, plan_hash: str) -> str | None:
    """The fingerprint of the key whose signature of the plan hash ``made`` carries
    (the plan's author's, for a ``plan`` event), whoever allowed_signers lists it for:
    the key is the person, so it binds the plan even when it is listed only under
    another name."""
    if not made.data.get("signature"):
        return None
    try:
        return signing.signing_fingerprint(str(made.data["signature"]), plan_hash.encode())
    except signing.BadSignature:
        return None


def author_signature(session: StackSession, plan_hash: str, key: str | None) -> dict[str, Any]:
    """The plan author's signature of the plan, when they give a key (``--key`` or
    ``STACKWRIGHT_SIGNING_KEY``): it binds the plan to that key, which then cannot
    approve it where self-approval is off."""
    path = signing.signing_key_path(key, use_git=False)
    if path is None:
        return {}
    signer = signing.load_signing_key(path)
    return {"signature": signer.sign(plan_hash.encode()), "key": signing.fingerprint(signer.blob)}


def _eligible(project: Project, env: Environment, who: str, authors: tuple[str, ...]) -> bool:
    return may_approve(project, env, who) and (who not in authors or env.self_approval_allowed)


def proof_problem(project: Project, env: Environment, event: Event, plan_hash: str) -> str | None:
    """Why this approval's proof of identity does not count here, or None. Outside
    protected environments a claimed identity is enough; an approval made in the web
    view counts only where the environment trusts the web's identity source."""
    proof = event.data.get("proof", CLAIMED)
    if proof == WEB:
        return _web_problem(env, event)
    if not env.protected:
        return None
    if proof == SIGNED:
        try:
            signing.verify(str(event.data.get("signature", "")), plan_hash.encode(), event.who,
                           project_signers(project))
        except signing.BadSignature as exc:
            return f"signature refused: {exc}{signers_note(project)}"
        return None
    if proof == GITHUB:
        if not env.github_approvals:
            return "a GitHub comment, and this environment counts signed approvals only"
        if github_listed(project, event.who):
            return None
        return f"{SIGNERS} does not list {event.who}{signers_note(project)}"
    return "unsigned (an identity claimed with --as)"


def _web_problem(env: Environment, event: Event) -> str | None:
    if not env.web_approvals:
        return (f"made in the web view, and environment {env.name!r} does not count web approvals "
                "(`web_approvals: true` is not set)")
    if event.data.get("auth") != "proxy" and env.protected:
        return "made in the web view's local development mode, where nobody is authenticated"
    return None


SIGNERS = signing.SIGNERS_FILE


def project_signers(project: Project) -> list[signing.Signer]:
    """The signers of the project's (or repository's) allowed_signers; none without one."""
    path = signers_file(project)
    return signing.read_signers(path) if path is not None else []


def signers_file(project: Project) -> Path | None:
    """The allowed_signers that counts for ``project`` (``signing.find_signers_file``)."""
    return signing.find_signers_file(project.root, lambda: _listing_workspace(project))


def _listing_workspace(project: Project) -> Path | None:
    """The file of the workspace around the project, if it lists the project."""
    from stackwright.errors import ProjectError
    from stackwright.operations.workspace_links import find_workspace

    try:
        workspace = find_workspace(project.root)
    except ProjectError:
        return None
    return workspace.file if workspace is not None and workspace.project_at(project.root) is not None else None


def signers_note(project: Project) -> str:
    """Why no allowed_signers counts, when none does (to end a refusal with); ""
    when one does."""
    if signers_file(project) is not None:
        return ""
    ignored = signing.ignored_signers_file(project.root)
    if ignored is None:
        return f" (no {SIGNERS} found for this project)"
    if signing.in_repository(project.root):
        why = "it is outside the project's git repository"
    elif (workspace := _listing_workspace(project)) is not None and workspace.parent == ignored.parent:
        why = "the workspace's folder, workspace file or allowed_signers has another owner than the project folder"
    else:
        why = (f"outside a git repository only the project folder's {SIGNERS} counts, or that of the "
               "workspace listing the project")
    return f" ({ignored} is not used: {why})"


def github_listed(project: Project, login: str) -> bool:
    """A GitHub login may approve through a comment when allowed_signers names it (as
    ``login`` or ``github:login``) or a ``groups:`` entry of stackwright.yaml lists it."""
    names = (login, f"github:{login}")
    if any(s.names(n) for s in project_signers(project) for n in names):
        return True
    return any(n in members for members in groups(project).values() for n in names)


def github_commenter(event_path: Path) -> tuple[str, str]:
    """(login, comment URL) of the person whose ``/approve`` comment (or label) triggered
    this workflow run, as GitHub wrote it in the event payload (``GITHUB_EVENT_PATH``)."""
    try:
        payload = json.loads(event_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ApprovalRefused(f"cannot read the GitHub event payload {event_path}: {exc}",
                              hint="pass --github-event \"$GITHUB_EVENT_PATH\" inside GitHub Actions") from None
    comment = payload.get("comment") if isinstance(payload, dict) else None
    user = (comment or {}).get("user") or (payload.get("sender") if isinstance(payload, dict) else None) or {}
    login = user.get("login") if isinstance(user, dict) else None
    if not isinstance(login, str) or not login:
        raise ApprovalRefused(f"the GitHub event payload {event_path} names no commenter",
                              hint="run approve --github-event only from an issue_comment or label event")
    return login, str((comment or {}).get("html_url") or "")


def approve(session: StackSession, plan_hash: str, comment: str = "", *, key: str | None = None,
            github_event: Path | None = None, web: str | None = None) -> ApprovalStatus:
    """Record an approval, refusing the author (unless the environment allows
    self-approval), anyone the environment does not list as an approver, and, in a
    protected environment, an approval without a proof that would count.

    The approver is ``session.who`` signing with ``key`` (or the configured key), or,
    with ``github_event``, the commenter GitHub names in that payload; with ``web``
    (``proxy`` or ``dev``: how the web view knew who it is), ``session.who`` as the web
    view authenticated it."""
    current = status(session, plan_hash)
    env, who = current.environment, session.who
    proof: dict[str, Any] = {"proof": CLAIMED}
    if github_event is not None:
        who, url = github_commenter(github_event)
        proof = {"proof": GITHUB, "comment_url": url}
    if who in current.authors and not env.self_approval_allowed:
        made = (f"made plan {plan_hash[:SHORT]}" if who == current.author else
                f"is a co-author of plan {plan_hash[:SHORT]} (made by {current.author})")
        raise ApprovalRefused(
            f"{who} {made} and may not approve it: environment "
            f"{env.name!r} does not allow self-approval",
            hint=f"ask {who_may_approve(session.project, env, current.author, current.co_authors)} to approve it",
        )
    if not may_approve(session.project, env, who):
        raise ApprovalRefused(
            f"{who} is not an approver of environment {env.name!r}",
            hint=f"approvers: {', '.join(env.approvers)} (set in stackwright.yaml)",
        )
    if web is not None:
        proof = {"proof": WEB, "source": WEB, "auth": web}
    elif github_event is None:
        proof = _signature(session, env, who, plan_hash, key)
    event = Event(0, session.stack, APPROVE, who, 0.0, proof)
    why = proof_problem(session.project, env, event, plan_hash)
    if why is not None:
        raise ApprovalRefused(f"the approval of {who} would not count in environment {env.name!r}: {why}",
                              hint=_SIGNING_HINT)
    why = _not_counted(session, current, event, plan_hash)
    if why is not None:
        raise ApprovalRefused(f"the approval of {who} would not count in environment {env.name!r}: {why}",
                              hint=f"ask {who_may_approve(session.project, env, current.author, current.co_authors)} "
                              "to approve it")
    _record(session, APPROVE, plan_hash, current.author, comment, who=who, extra=proof)
    return status(session, plan_hash)


def _not_counted(session: StackSession, current: ApprovalStatus, event: Event, plan_hash: str) -> str | None:
    """Why an approval whose proof counts would still not count, judged as ``apply``
    will judge it (``judge``): its key is the author's, or it is one person's second
    approval under another name (its key approved already)."""
    key = signed_key(event, plan_hash)
    own = authors_keys(session.project, current.environment, current.authors, current.author_key)
    if key is not None and key in own and key == current.author_key:
        return f"key {key} signed the plan, and self-approval is off"
    if key is not None and key in own:
        return (f"key {key} is listed for {own[key]}, {_role(own[key], current.author)}, in {SIGNERS}, "
                "and self-approval is off")
    made, reviews = _reviews(session, plan_hash)
    later = Event(max((e.id for e in reviews), default=made.id) + 1, event.stack, APPROVE, event.who,
                  event.at, event.data)
    judged = judge(session.project, current.environment, made, [*reviews, later], plan_hash)
    if event.who in judged.approved_by:
        return None
    return next((why for who, why in reversed(judged.uncounted) if who == event.who), "it would not count")


_SIGNING_HINT = (f"sign with your SSH key: --key ~/.ssh/id_ed25519 (or {signing.SIGNING_KEY_ENV}, or git's "
                 f"user.signingkey); its public key must be listed for you in {SIGNERS}")


def _signature(session: StackSession, env: Environment, who: str, plan_hash: str,
               key: str | None) -> dict[str, Any]:
    """A signed proof when a key is given (or, in protected environments, configured);
    otherwise the identity is only claimed."""
    path = signing.signing_key_path(key, use_git=env.protected)
    if path is None:
        if env.protected:
            raise ApprovalRefused(f"environment {env.name!r} is protected: an approval must be signed",
                                  hint=_SIGNING_HINT)
        return {"proof": CLAIMED}
    signer = signing.load_signing_key(path)
    return {"proof": SIGNED, "signature": signer.sign(plan_hash.encode()),
            "key": signing.fingerprint(signer.blob)}


def reject(session: StackSession, plan_hash: str, comment: str = "", *, web: str | None = None) -> ApprovalStatus:
    """Record a rejection: the plan may not be applied until approved again. Its author
    may withdraw it; otherwise only those who may approve may reject."""
    current = status(session, plan_hash)
    env, who = current.environment, session.who
    if who != current.author and not may_approve(session.project, env, who):
        raise ApprovalRefused(
            f"{who} is not an approver of environment {env.name!r} and may not reject its plans",
            hint=f"approvers: {', '.join(env.approvers)} (set in stackwright.yaml)",
        )
    _record(session, REJECT, plan_hash, current.author, comment,
            extra={"source": WEB, "auth": web} if web is not None else None)
    return status(session, plan_hash)


def _record(session: StackSession, kind: str, plan_hash: str, author: str, comment: str,
            who: str | None = None, extra: dict[str, Any] | None = None) -> Event:
    data = {"plan_hash": plan_hash, "author": author, "comment": comment,
            "environment": environment_for(session.project, session.stack).name, **(extra or {})}
    return session.store.record_event(session.stack, kind, who or session.who, data)


def require_approved(session: StackSession, plan_hash: str) -> ApprovalStatus:
    """Refuse a plan that was rejected after its last approval, or that lacks the
    approvals its environment needs (protected environments need at least one)."""
    current = status(session, plan_hash)
    short = plan_hash[:SHORT]
    if current.rejection is not None:
        reason = current.rejection.data.get("comment") or "no comment"
        raise NotApproved(
            f"plan {short} was rejected by {current.rejection.who} {when(current.rejection.at)}: {reason}",
            hint="make a new plan that addresses it, or have the plan approved again",
        )
    if current.missing:
        have = f", approved by {', '.join(current.approved_by)}" if current.approved_by else ""
        ignored = "; not counted: " + ", ".join(f"{who} ({why})" for who, why in current.uncounted) \
            if current.uncounted else ""
        raise NotApproved(
            f"environment {current.environment.name!r} needs {current.needed} approval(s) of plan "
            f"{short}; {current.missing} missing{have}{ignored}",
            hint=f"ask {who_may_approve(session.project, current.environment, current.author, current.co_authors)} "
            "to run `stackwright approve FILE`",
        )
    return current


def who_may_approve(project: Project, env: Environment, author: str, co_authors: tuple[str, ...] = ()) -> str:
    """The people a refusal should send the author (and any co-author) to, in words."""
    names, role = ", ".join((author, *co_authors)), "the authors" if co_authors else "the author"
    if env.approvers:
        listed = ", ".join(env.approvers)
        return listed if env.self_approval_allowed else f"{listed} (not {names}, {role})"
    return "anyone" if env.self_approval_allowed else f"anyone but {names} ({role})"


# --- the audit log ----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    """One line of `stackwright audit`."""

    at: float
    stack: str
    kind: str
    who: str
    plan_hash: str
    detail: str
    data: dict[str, Any]
    """The event's details verbatim, for `audit --json`."""

    def to_json(self) -> dict[str, Any]:
        return {"at": iso_time(self.at), "stack": self.stack, "kind": self.kind, "who": self.who,
                "plan_hash": self.plan_hash or None, "detail": self.detail, "data": self.data}


def audit(store: StateStore, stack: str | None = None) -> list[AuditRow]:
    """Plans, approvals, rejections and applies, oldest first."""
    return [AuditRow(e.at, e.stack, e.kind, e.who, str(e.data.get("plan_hash") or ""), _detail(e), e.data)
            for e in store.events(stack, kinds=AUDITED)]


def _detail(event: Event) -> str:
    data = event.data
    if event.kind == APPROVE:
        proof = str(data.get("proof") or CLAIMED)
        proof += f" {data['key']}" if data.get("key") else ""
        return f"[{proof}] {data.get('comment') or ''}".rstrip()
    if event.kind == REJECT:
        return str(data.get("comment") or "")
    if event.kind == PLAN:
        counts = data.get("counts") or {}
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no changes"
        co_authors = recorded_co_authors(event)
        also = f" (co-authors: {', '.join(co_authors)})" if co_authors else ""
        return f"{summary} -> {data.get('path', '')}{also}"
    if event.kind == ATTEMPT:
        return attempt_text(data)
    if event.kind == ROTATE:
        return (f"{data.get('result', '')}: secrets of {', '.join(map(str, data.get('stacks') or []))} "
                f"re-encrypted with {data.get('key', '?')} (rotated from stack {data.get('stack', '?')})")
    result = str(data.get("result", ""))
    checkpoint = data.get("checkpoint")
    text = f"{result} (checkpoint {checkpoint})" if checkpoint else result
    if data.get("urn"):
        text += f" {data['urn']}"
    if event.kind == "stack-rm":
        text += f", state and history removed ({data.get('resources', 0)} resource(s) forgotten)"
    if data.get("emergency") is not None:
        text += f" EMERGENCY: {data['emergency']}"
    return text


def attempt_text(data: dict[str, Any]) -> str:
    """``up FAILED before applying (at program): <error>``: the command, where it
    stopped and why, and an emergency's reason."""
    text = f"{data.get('command', '?')} FAILED before applying (at {data.get('stage', '?')}): {data.get('error', '')}"
    if data.get("emergency") is not None:
        text += f" EMERGENCY: {data['emergency']}"
    return text


def when(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("at %Y-%m-%d %H:%M")


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
