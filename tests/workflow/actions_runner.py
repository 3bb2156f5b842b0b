"""Run one job of a GitHub Actions workflow on this machine, step by step, as a runner
would: `run:` steps in bash (`bash --noprofile --norc -eo pipefail`, GitHub's default)
in the job's working directory, with GitHub's environment variables (GITHUB_WORKSPACE,
GITHUB_EVENT_PATH, a fresh GITHUB_OUTPUT and GITHUB_ENV per step, GITHUB_STEP_SUMMARY,
RUNNER_TEMP...) and the workflow's, job's and step's `env:` (what a step wrote to
GITHUB_ENV is in the environment of the steps after it); `uses:` steps by a handler per action
(the test decides what checking out or uploading means here); `actions/github-script`
steps by node, against a fake of GitHub's API that records every call.

Expressions (`${{ ... }}`) are evaluated for the shapes the generated workflows use:
context paths, `||`, `==` with a string literal, `!cancelled()`, `always()`. Any other
shape, and any `vars.`/`secrets.` the test did not provide, fails the run: a new
expression must be taught here, not silently read as empty. The job-level `if:` is not
evaluated (the test asserts it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HARNESS = Path(__file__).with_name("github_script_harness.js")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

ActionHandler = Callable[["Runner", Mapping[str, str], Mapping[str, str]], Mapping[str, str]]
"""(runner, evaluated `with:`, step environment) -> step outputs; raises StepFailed."""


class StepFailed(Exception):
    pass


@dataclass
class StepRecord:
    name: str
    outcome: str
    output: str = ""


@dataclass
class Runner:
    workspace: Path
    temp: Path
    event_name: str
    event: dict[str, Any]
    variables: dict[str, str]
    secrets: dict[str, str]
    base_env: dict[str, str]
    actions: dict[str, ActionHandler]
    github: dict[str, Any] = field(default_factory=dict)
    """Extra `github.` context (actor, sha, run_id, base_ref...)."""
    needs: dict[str, str] = field(default_factory=dict)
    """Result per job this one needs."""
    api_calls: list[dict[str, Any]] = field(default_factory=list)
    """Every call a github-script step made, in order."""
    api_answers: dict[str, Any] = field(default_factory=dict)
    """What the fake API returns per method (e.g. ``rest.issues.listComments``)."""
    exported: dict[str, str] = field(default_factory=dict)
    """Everything the steps wrote to GITHUB_ENV."""

    def run_job(self, workflow: Mapping[str, Any], job_id: str) -> list[StepRecord]:
        job = workflow["jobs"][job_id]
        self.steps: dict[str, dict[str, Any]] = {}
        self.temp.mkdir(parents=True, exist_ok=True)
        event_path = self.temp / "event.json"
        event_path.write_text(json.dumps(self.event))
        (self.temp / "env").write_text("")
        defaults = job.get("defaults", {}).get("run", {})
        env = {**self.base_env, **self._github_env(event_path)}
        env.update(self._evaluate_env(workflow.get("env", {}), env))
        env.update(self._evaluate_env(job.get("env", {}), env))
        records: list[StepRecord] = []
        failed = False
        for number, step in enumerate(job["steps"]):
            name = step.get("name", f"step {number}")
            condition = step.get("if", "success()")
            if not self._condition(condition, failed):
                records.append(StepRecord(name, "skipped"))
                self._remember(step, "skipped", {})
                continue
            step_env = {**env, **self._evaluate_env(step.get("env", {}), env)}
            try:
                outputs, text = self._run_step(step, step_env, defaults)
                outcome = "success"
            except StepFailed as exc:
                outputs, text, outcome = {}, str(exc), "failure"
                failed = failed or not step.get("continue-on-error", False)
            records.append(StepRecord(name, outcome, text))
            self._remember(step, outcome, outputs)
            env.update(self._take_env_file())
        return records

    def _take_env_file(self) -> dict[str, str]:
        """What the step wrote to GITHUB_ENV (emptied for the next step)."""
        path = self.temp / "env"
        written = parse_outputs(path.read_text()) if path.exists() else {}
        path.write_text("")
        self.exported.update(written)
        return written

    # --- steps -----------------------------------------------------------------------------

    def _run_step(self, step: Mapping[str, Any], env: dict[str, str],
                  defaults: Mapping[str, str]) -> tuple[dict[str, str], str]:
        output_file = self.temp / f"output-{len(self.steps)}"
        output_file.write_text("")
        env = {**env, "GITHUB_OUTPUT": str(output_file)}
        if "run" in step:
            assert defaults.get("shell", "bash") == "bash", "only bash steps run here"
            folder = self.workspace / step.get("working-directory", defaults.get("working-directory", "."))
            script = self.temp / "step.sh"
            script.write_text(step["run"])
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                                  cwd=folder, env=env, capture_output=True, text=True, timeout=300)
            text = done.stdout + done.stderr
            if done.returncode != 0:
                raise StepFailed(f"exit {done.returncode}\n{text}")
            return parse_outputs(output_file.read_text()), text
        action = step["uses"].split("@")[0]
        inputs = {k: self.evaluate(_text(v)) for k, v in step.get("with", {}).items()}
        if action == "actions/github-script":
            return self._github_script(inputs["script"], env, output_file)
        handler = self.actions.get(action)
        assert handler is not None, f"no local stand-in for {step['uses']}"
        return dict(handler(self, inputs, env)), ""

    def _github_script(self, script: str, env: dict[str, str], output_file: Path) -> tuple[dict[str, str], str]:
        node = shutil.which("node")
        assert node is not None, "node runs the github-script steps"
        script_file, calls_file = self.temp / "script.js", self.temp / "calls.json"
        script_file.write_text(script)
        answers = self.temp / "answers.json"
        answers.write_text(json.dumps(self.api_answers))
        done = subprocess.run([node, str(HARNESS), str(script_file), str(calls_file), str(answers)],
                              env=env, capture_output=True, text=True, timeout=60)
        text = done.stdout + done.stderr
        if calls_file.exists():
            self.api_calls.extend(json.loads(calls_file.read_text()))
            calls_file.unlink()
        if done.returncode != 0:
            raise StepFailed(f"exit {done.returncode}\n{text}")
        return parse_outputs(output_file.read_text()), text

    def _remember(self, step: Mapping[str, Any], outcome: str, outputs: Mapping[str, str]) -> None:
        key = step.get("id", f"#{len(self.steps)}")
        self.steps[key] = {"outcome": outcome, "conclusion": outcome, "outputs": dict(outputs)}

    # --- expressions -----------------------------------------------------------------------

    def _github_env(self, event_path: Path) -> dict[str, str]:
        return {
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_EVENT_NAME": self.event_name, "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_STEP_SUMMARY": str(self.temp / "summary.md"), "RUNNER_TEMP": str(self.temp),
            "GITHUB_ENV": str(self.temp / "env"), "GITHUB_PATH": str(self.temp / "path"),
            "GITHUB_REPOSITORY": "acme/infra", "GITHUB_SERVER_URL": "https://github.test",
            "GITHUB_RUN_ID": str(self.github.get("run_id", "1")), "GITHUB_SHA": str(self.github.get("sha", "")),
            "GITHUB_ACTOR": str(self.github.get("actor", "")),
        }

    def _evaluate_env(self, values: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
        return {key: self.evaluate(_text(value)) for key, value in values.items()}

    def evaluate(self, text: str) -> str:
        """``text`` with every ``${{ ... }}`` replaced by its value."""
        return EXPRESSION.sub(lambda m: _text(self._value(m.group(1))), text)

    def _condition(self, condition: str, failed: bool) -> bool:
        inner = EXPRESSION.fullmatch(condition.strip())
        expression = (inner.group(1) if inner else condition).strip()
        if expression == "success()":
            return not failed
        if expression in ("!cancelled()", "always()"):
            return True
        return not failed and bool(self._value(expression))

    def _value(self, expression: str) -> Any:
        expression = expression.strip()
        if " || " in expression:
            for part in expression.split(" || "):
                value = self._value(part)
                if value:
                    return value
            return value
        if " == " in expression:
            left, right = expression.split(" == ", 1)
            return self._value(left) == self._value(right)
        if re.fullmatch(r"'[^']*'", expression):
            return expression[1:-1]
        return self._path(expression)

    def _path(self, expression: str) -> Any:
        head, _, rest = expression.partition(".")
        if head == "vars" or head == "secrets":
            source = self.variables if head == "vars" else self.secrets
            assert rest in source, f"the test provides no {expression}"
            return source[rest]
        if head == "runner" and rest == "temp":
            return str(self.temp)
        if head == "steps":
            return _lookup(self.steps, rest)
        if head == "needs":
            job, _, what = rest.partition(".")
            assert what == "result", expression
            return self.needs[job]
        if head == "github":
            context = {"event": self.event, "event_name": self.event_name, "token": "fake-token", **self.github}
            return _lookup(context, rest)
        raise AssertionError(f"expression not understood here: {expression}")


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_outputs(text: str) -> dict[str, str]:
    """A GITHUB_OUTPUT file: ``name=value`` lines and ``name<<DELIM`` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            outputs[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


FAKE_GH = r"""#!/usr/bin/env bash
# A stand-in for GitHub's CLI: `gh api PATH --jq FILTER` answers with FILTER (by jq, as
# gh's own --jq does) applied to the JSON in $FAKE_GH_DIR/answers/<PATH, / as _>.json,
# and fails as gh does on an HTTP error when there is no such file. Each call is logged
# to $FAKE_GH_DIR/calls, with whether GH_TOKEN was set.
set -euo pipefail
printf '%s token=%s\n' "$*" "${GH_TOKEN:+set}" >> "$FAKE_GH_DIR/calls"
if [ "$#" -ne 4 ] || [ "$1" != api ] || [ "$3" != --jq ]; then
  echo "fake gh: not understood: $*" >&2
  exit 2
fi
if [ -z "${GH_TOKEN:-}" ]; then
  echo "gh: To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN environment variable." >&2
  exit 4
fi
answer="$FAKE_GH_DIR/answers/${2//\//_}.json"
if [ ! -f "$answer" ]; then
  echo "gh: Not Found (HTTP 404)" >&2
  exit 1
fi
jq -r "$4" < "$answer"
"""


def fake_gh(folder: Path, answers: Mapping[str, Any]) -> Path:
    """Put ``FAKE_GH`` in ``folder``, answering each API path of ``answers`` with its JSON;
    ``folder``, which a job finds it in with ``FAKE_GH_DIR`` set to it and on PATH
    (``job_env_base([folder, ...], {"FAKE_GH_DIR": str(folder)})``)."""
    if shutil.which("jq") is None:
        pytest.skip("jq is needed to apply gh's --jq filters here (GitHub's runners have it)")
    (folder / "answers").mkdir(parents=True, exist_ok=True)
    for path, answer in answers.items():
        (folder / "answers" / (path.replace("/", "_") + ".json")).write_text(json.dumps(answer))
    gh = folder / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    return folder


def job_env_base(path_dirs: list[Path], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the job: this machine's PATH after ``path_dirs``, HOME and
    nothing of Stackwright's own settings."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR")}
    path = os.pathsep.join([*map(str, path_dirs), os.environ.get("PATH", "")])
    return {**keep, "PATH": path, **(extra or {})}
