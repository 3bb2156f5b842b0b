"""The workflows `stackwright ci github` writes run, not only validate: every job's steps
run here in order (tests/workflow/actions_runner.py), in clones of a sample repository,
with the environment GitHub would give them, against a shared SQLite state standing in
for the S3 bucket. A pull request is previewed (read-only, commented), merged, planned
(an issue opened), approved by a comment and applied; the change is then on disk and
the approval in the audit log under the commenter's GitHub login.

The install step runs too: pip resolves the pinned requirement for real (a dry run,
without dependencies), with git told to fetch the pinned GitHub URL from this
repository's own clone, so a pin to a commit that does not exist, or to something
that is not Stackwright, fails here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from cli.conftest import cli_env, run_cli
from workflow.actions_runner import Runner, StepFailed, StepRecord, fake_gh, job_env_base

from stackwright.state.sqlite import SqliteStateStore
from stackwright.workflow.ci_github import ACTIONS

SOURCE_REPO = Path(__file__).resolve().parents[2]
PINNED_URL = "https://github.com/acme/stackwright"
ROLE = "arn:aws:iam::123456789012:role/stackwright"
READ_ONLY_ROLE = "arn:aws:iam::123456789012:role/stackwright-read-only"

PROJECT = """\
name: app
main: __main__.py
environments:
  production:
    protected: true
    required_approvals: 1
    github_approvals: true
    approvers: ["group:sre"]
groups:
  sre: [alice]
"""
PROGRAM = """\
import stackwright as sw
from stackwright.providers import local

config = sw.Config()
local.File("greeting", path="out/greeting.txt", content=config.require_str("greeting"))
"""


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True,
                          env={**cli_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})
    return done.stdout.strip()


def source_commit() -> str:
    if not (SOURCE_REPO / ".git").exists():
        pytest.skip("the Stackwright sources are not a git checkout: no commit to pin")
    return git(SOURCE_REPO, "rev-parse", "HEAD")


@pytest.fixture()
def flow(tmp_path: Path) -> dict[str, Any]:
    """A repository with one protected stack, its workflows committed on main, the
    stack initialised in the shared state, and a pull-request branch that changes it."""
    return make_flow(tmp_path, initialised=True)


def make_flow(tmp_path: Path, initialised: bool, project: str = PROJECT, program: str = PROGRAM) -> dict[str, Any]:
    """``flow``; without ``initialised`` the shared state has no stack yet (no state at all)."""
    if shutil.which("node") is None:
        pytest.skip("node is needed to run the github-script steps")
    commit = source_commit()
    repo = tmp_path / "repo"
    app = repo / "infra" / "app"
    (app / "stacks").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "infra" / "stackwright-workspace.yaml").write_text("projects:\n  - path: app\n    stacks: [production]\n")
    (app / "stackwright.yaml").write_text(project)
    (app / "__main__.py").write_text(program)
    (app / "stacks" / "production.yaml").write_text("config:\n  greeting: hello\n")
    (repo / ".gitignore").write_text("out/\nplans/\n.stackwright/\n")
    code, out, err = run_cli(repo / "infra", "ci", "github", "--source", f"git+{PINNED_URL}@{commit}",
                             "--approver", "alice")
    assert code == 0, out + err
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "infra")
    state = tmp_path / "state" / "state.db"
    state.parent.mkdir()
    if initialised:
        code, out, err = run_cli(app, "stack", "init", "production",
                                 env=cli_env(STACKWRIGHT_STATE_URL=f"sqlite:///{state}"))
        assert code == 0, out + err
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "change")
    (app / "stacks" / "production.yaml").write_text("config:\n  greeting: hello from the pull request\n")
    git(repo, "commit", "-q", "-am", "a new greeting")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return {"repo": repo, "tmp": tmp_path, "state": state, "base": base, "head": head,
            "artifacts": tmp_path / "artifacts", "roles": []}


def load_workflow(repo: Path, name: str) -> Any:
    return YAML(typ="safe", pure=True).load((repo / ".github" / "workflows" / name).read_text())


def clone(flow: Mapping[str, Any], name: str, ref: str) -> Path:
    work = flow["tmp"] / name
    subprocess.run(["git", "clone", "-q", str(flow["repo"]), str(work)], check=True)
    git(work, "checkout", "-q", ref)
    return work


def stand_ins(flow: dict[str, Any]) -> dict[str, Any]:
    """What each `uses:` action does here; each checks the inputs it is given."""
    def checkout(runner: Runner, inputs: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
        assert inputs.get("fetch-depth") == "0" and inputs.get("persist-credentials") == "false"
        if inputs.get("ref"):
            git(runner.workspace, "checkout", "-q", inputs["ref"])
        return {}

    def setup_python(runner: Runner, inputs: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
        assert inputs["python-version"] == "3.11"
        return {}

    def credentials(runner: Runner, inputs: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
        assert inputs["aws-region"] == "eu-west-1"
        flow["roles"].append(inputs["role-to-assume"])
        return {}

    def upload(runner: Runner, inputs: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
        source = runner.workspace / inputs["path"]
        if not source.exists():
            if inputs.get("if-no-files-found") == "error":
                raise StepFailed(f"no files at {source}")
            return {}
        shutil.copytree(source, flow["artifacts"] / inputs["name"], dirs_exist_ok=True)
        return {}

    def download(runner: Runner, inputs: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
        stored = flow["artifacts"] / inputs["name"]
        if not stored.exists():
            raise StepFailed(f"no artifact {inputs['name']}")
        if "run-id" in inputs:
            assert inputs["run-id"] == str(flow["plan_run_id"]), "the plans of another run"
        shutil.copytree(stored, runner.workspace / inputs["path"], dirs_exist_ok=True)
        return {}

    return {"actions/checkout": checkout, "actions/setup-python": setup_python,
            "aws-actions/configure-aws-credentials": credentials,
            "actions/upload-artifact": upload, "actions/download-artifact": download}


def runner(flow: dict[str, Any], workspace: Path, event_name: str, event: dict[str, Any],
           passphrase: str = "", gh: Mapping[str, Any] | None = None, **github: Any) -> Runner:
    """A runner whose `stackwright` is this one (the installed package: on ``PYTHONPATH``,
    the source tree's ``stackwright.egg-info`` of an editable install would satisfy the
    pinned requirement and pip would resolve nothing), whose pip resolves the pinned
    GitHub URL from this repository's clone, whose state is the flow's SQLite file, and
    whose `gh` answers the API paths of ``gh`` (``actions_runner.fake_gh``)."""
    gh_folder = fake_gh(flow["tmp"] / f"gh-{workspace.name}", gh or {})
    env = job_env_base([gh_folder, Path(sys.executable).parent], {
        "FAKE_GH_DIR": str(gh_folder),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.file://{SOURCE_REPO}.insteadOf",
        "GIT_CONFIG_VALUE_0": PINNED_URL,
        "PIP_DRY_RUN": "1", "PIP_NO_DEPS": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_NO_INDEX": "1",
    })
    return Runner(workspace=workspace, temp=flow["tmp"] / f"runner-{workspace.name}", event_name=event_name,
                  event=event, base_env=env, actions=stand_ins(flow), github=github,
                  variables={"STACKWRIGHT_STATE_URL": f"sqlite:///{flow['state']}", "STACKWRIGHT_AWS_ROLE": ROLE,
                             "STACKWRIGHT_AWS_READ_ONLY_ROLE": READ_ONLY_ROLE, "AWS_REGION": "eu-west-1"},
                  secrets={"STACKWRIGHT_PASSPHRASE": passphrase})


def succeeded(records: list[StepRecord]) -> None:
    failed = [f"{r.name}: {r.output}" for r in records if r.outcome == "failure"]
    assert not failed, "\n".join(failed)


def digest(path: Path) -> str:
    """The file's SHA-256 ("missing" when there is no file: a state never written)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"


def test_a_pull_request_is_previewed_read_only_then_planned_approved_and_applied(flow: dict[str, Any]) -> None:
    audit = review_merge_and_approve(flow)
    approvals = [e for e in audit if e.get("kind") == "approve"]
    assert [(e["who"], e["data"]["proof"]) for e in approvals] == [("alice", "github")]
    [plan] = [e for e in audit if e.get("kind") == "plan"]
    assert plan["who"] == "bob"  # the pull request's author, not carol who merged it


def test_a_stack_not_in_the_shared_state_yet_is_planned_and_created_by_its_apply(tmp_path: Path) -> None:
    """The first merge of a stack the bucket does not have: the preview shows it all to
    create, the plan job plans it against an empty state (it used to fail: "not
    initialized yet"), and the apply job creates it with the lineage its plan pins."""
    flow = make_flow(tmp_path, initialised=False)
    audit = review_merge_and_approve(flow)
    assert [(e["kind"], e["stack"]) for e in audit] == [("plan", "production"), ("approve", "production"),
                                                        ("apply", "production")]
    assert audit[0]["data"]["new_stack"] is True and audit[2]["data"]["created_stack"] is True
    plan = json.loads((flow["artifacts"] / "stackwright-plans" / "app" / "production.plan").read_text())
    with SqliteStateStore(flow["state"]) as store:
        [stack] = store.list_stacks()
    assert (stack.name, stack.resource_count, stack.lineage) == ("production", 1, plan["plan"]["lineage"])


SECRET_PROGRAM = """\
import stackwright as sw
from stackwright.providers import local, random

config = sw.Config()
password = random.Password("db-password", length=20)
local.File("greeting", path="out/greeting.txt", content=config.require_str("greeting"))
sw.export("db_password", password.result)
"""
PASSPHRASE = "the repository secret, long enough"


def test_the_preview_opens_the_secrets_ci_sealed_with_the_passphrase(tmp_path: Path) -> None:
    """A stack file without `secrets:` seals the stack's secrets with
    STACKWRIGHT_PASSPHRASE once a job that has it (plan, apply) applied it, so its preview
    must open them too. The preview job had no passphrase: every pull request after the
    first apply got "this stack's secrets need a passphrase" and a comment saying the
    stack failed. The job's own steps run here, from the generated YAML."""
    flow = make_flow(tmp_path, initialised=True, project="name: app\nmain: __main__.py\n", program=SECRET_PROGRAM)
    app = flow["repo"] / "infra" / "app"
    state_url = f"sqlite:///{flow['state']}"
    code, out, err = run_cli(app, "up", "--yes", env=cli_env(STACKWRIGHT_STATE_URL=state_url,
                                                             STACKWRIGHT_PASSPHRASE=PASSPHRASE))
    assert code == 0, out + err
    code, out, err = run_cli(app, "outputs", "--stack", "production", "--json",
                             env={**cli_env(STACKWRIGHT_STATE_URL=state_url), "STACKWRIGHT_PASSPHRASE": ""})
    assert code != 0 and "need a passphrase" in err  # the state's secret is sealed with it

    preview = load_workflow(flow["repo"], "stackwright-preview.yml")
    assert preview["jobs"]["preview"]["env"]["STACKWRIGHT_PASSPHRASE"] == "${{ secrets.STACKWRIGHT_PASSPHRASE }}"
    work = clone(flow, "pr", flow["head"])
    git(work, "update-ref", "refs/remotes/origin/main", flow["base"])
    before = digest(flow["state"])
    pr_event = {"pull_request": {"number": 5, "user": {"login": "bob"}}}
    pr = runner(flow, work, "pull_request", pr_event, passphrase=PASSPHRASE, base_ref="main")
    records = pr.run_job(preview, "preview")
    succeeded(records)
    shown = next(r for r in records if r.name == "Preview").output
    assert "1 to update" in shown and "1 ok" in shown, shown
    summary = (pr.temp / "summary.md").read_text()
    assert "`app/production`" in summary and "failed" not in summary and PASSPHRASE not in summary
    assert digest(flow["state"]) == before

    # The same job without the secret: what every such pull request got.
    del preview["jobs"]["preview"]["env"]["STACKWRIGHT_PASSPHRASE"]
    records = runner(flow, work, "pull_request", pr_event, base_ref="main").run_job(preview, "preview")
    failed = [r for r in records if r.outcome == "failure"]
    assert [r.name for r in failed] == ["Preview"] and "STACKWRIGHT_PASSPHRASE is not set" in failed[0].output


def review_merge_and_approve(flow: dict[str, Any]) -> list[dict[str, Any]]:
    """The whole path: the pull request previewed and commented, merged and planned, the
    plans approved by alice's `/approve` and applied. The audit log as `audit --json`."""
    repo = flow["repo"]

    # Pull request: preview with the read-only role and state, then comment.
    preview = load_workflow(repo, "stackwright-preview.yml")
    work = clone(flow, "pr", flow["head"])
    git(work, "update-ref", "refs/remotes/origin/main", flow["base"])
    before = digest(flow["state"])
    pr_event = {"pull_request": {"number": 5, "user": {"login": "bob"}}}
    pr = runner(flow, work, "pull_request", pr_event, base_ref="main")
    records = pr.run_job(preview, "preview")
    succeeded(records)
    install = next(r for r in records if r.name == "Install Stackwright")
    assert "Would install stackwright-" in install.output  # pip resolved the pinned commit
    assert flow["roles"] == [READ_ONLY_ROLE]
    assert digest(flow["state"]) == before
    assert not (work / "infra" / "app" / "out").exists()
    comment = runner(flow, flow["tmp"] / "empty", "pull_request", pr_event)
    comment.workspace.mkdir()
    comment.needs = {"preview": "success"}
    succeeded(comment.run_job(preview, "comment"))
    [listed, created] = comment.api_calls
    assert listed["method"] == "paginate:rest.issues.listComments"
    assert created["method"] == "rest.issues.createComment" and created["args"]["issue_number"] == 5
    assert created["args"]["body"].startswith("<!-- stackwright-preview -->\n")
    assert "app/production" in created["args"]["body"] and "failed" not in created["args"]["body"]

    # Merged: the push to main is planned and a review issue opened.
    git(repo, "merge", "-q", "--ff-only", "change")
    flow["plan_run_id"] = 4242
    plan_work = clone(flow, "main", flow["head"])
    # bob's pull request, merged by carol: the plans are bob's, carol a co-author.
    merged = [{"number": 5, "user": {"login": "bob"}, "merged_at": "2026-05-04T10:00:00Z"}]
    push = runner(flow, plan_work, "push", {"before": flow["base"], "after": flow["head"]},
                  gh={f"repos/acme/infra/commits/{flow['head']}/pulls": merged},
                  sha=flow["head"], actor="carol", run_id=4242)
    succeeded(push.run_job(load_workflow(repo, "stackwright-plan.yml"), "plan"))
    assert push.steps["plan"]["outputs"] == {"has_plans": "true"}
    assert push.exported == {"STACKWRIGHT_USER": "bob", "STACKWRIGHT_CO_AUTHORS": "carol"}
    [issue] = push.api_calls
    assert issue["method"] == "rest.issues.create" and issue["args"]["labels"] == ["stackwright-plan"]
    assert f"<!-- stackwright-plan run=4242 sha={flow['head']} -->" in issue["args"]["body"]
    assert f"Plans for {flow['head']} (by @bob, merged by @carol, [run](" in issue["args"]["body"]
    assert (flow["artifacts"] / "stackwright-plans" / "app" / "production.plan").is_file()

    # `/approve` by alice: the plans of that run, approved as alice, applied.
    apply_work = clone(flow, "apply", flow["base"])
    approve_event = {
        "comment": {"body": "/approve", "user": {"login": "alice"}, "author_association": "MEMBER",
                    "html_url": "https://github.test/acme/infra/issues/7#issuecomment-1"},
        "issue": {"number": 7, "body": issue["args"]["body"], "state": "open",
                  "html_url": "https://github.test/acme/infra/issues/7",
                  "user": {"login": "github-actions[bot]"}, "labels": [{"name": "stackwright-plan"}]},
        "sender": {"login": "alice"},
    }
    approve = runner(flow, apply_work, "issue_comment", approve_event, actor="alice", run_id=4343)
    records = approve.run_job(load_workflow(repo, "stackwright-apply.yml"), "apply")
    succeeded(records)
    assert git(apply_work, "rev-parse", "HEAD") == flow["head"]  # checked out the planned commit
    assert (apply_work / "infra" / "app" / "out" / "greeting.txt").read_text() == "hello from the pull request"
    report, close = approve.api_calls
    assert report["args"]["body"].startswith("Approved by @alice and applied")
    assert close["args"] == {"owner": "acme", "repo": "infra", "issue_number": 7,
                             "state": "closed", "state_reason": "completed"}
    assert flow["roles"] == [READ_ONLY_ROLE, ROLE, ROLE]
    code, out, err = run_cli(apply_work / "infra" / "app", "audit", "--json",
                             env=cli_env(STACKWRIGHT_STATE_URL=f"sqlite:///{flow['state']}"))
    assert code == 0, err
    audit: list[dict[str, Any]] = json.loads(out)
    return audit


def test_a_broken_command_line_fails_the_job(flow: dict[str, Any]) -> None:
    """The check above can fail: a workflow whose preview names a flag the CLI lacks
    fails its job here."""
    workflow = load_workflow(flow["repo"], "stackwright-preview.yml")
    step = next(s for s in workflow["jobs"]["preview"]["steps"] if s.get("name") == "Preview")
    step["run"] = step["run"].replace("--format markdown", "--format mardown")
    work = clone(flow, "pr", flow["head"])
    git(work, "update-ref", "refs/remotes/origin/main", flow["base"])
    records = runner(flow, work, "pull_request", {"pull_request": {"number": 5, "user": {"login": "bob"}}},
                     base_ref="main").run_job(workflow, "preview")
    failed = [r for r in records if r.outcome == "failure"]
    assert [r.name for r in failed] == ["Preview"] and "mardown" in failed[0].output


def test_the_pull_request_job_cannot_write_the_state(flow: dict[str, Any]) -> None:
    """The read-only mode is the state layer's, not a promise of the workflow: in the
    preview job's environment a command that would write is refused and the state
    stays as it was."""
    from stackwright.state import backends

    if not hasattr(backends, "READ_ONLY_ENV"):
        pytest.skip("this tree's state layer has no read-only mode (STACKWRIGHT_STATE_READ_ONLY)")
    workflow = load_workflow(flow["repo"], "stackwright-preview.yml")
    step = next(s for s in workflow["jobs"]["preview"]["steps"] if s.get("name") == "Preview")
    step["run"] = "cd app\nstackwright stack init scratch\n"
    work = clone(flow, "pr", flow["head"])
    before = digest(flow["state"])
    records = runner(flow, work, "pull_request", {"pull_request": {"number": 5, "user": {"login": "bob"}}},
                     base_ref="main").run_job(workflow, "preview")
    failed = [r for r in records if r.outcome == "failure"]
    assert [r.name for r in failed] == ["Preview"] and "read-only" in failed[0].output, failed
    assert digest(flow["state"]) == before
    assert not (work / "infra" / "app" / "out").exists()


def test_every_action_used_is_one_docs_ci_explains(flow: dict[str, Any]) -> None:
    """The versions are chosen in one place (``ACTIONS``) and each is explained in
    docs/ci.md (why that major, and that it runs on Node 24)."""
    used = {step["uses"] for name in ("stackwright-preview.yml", "stackwright-plan.yml", "stackwright-apply.yml")
            for job in load_workflow(flow["repo"], name)["jobs"].values() for step in job["steps"] if "uses" in step}
    assert used == set(ACTIONS.values())
    text = (SOURCE_REPO / "docs" / "ci.md").read_text()
    for ref in ACTIONS.values():
        assert f"| `{ref}` |" in text, f"docs/ci.md does not explain {ref}"
