"""Workspaces and `stackwright run`, through the real command in a real git repository.

The workspace (``python_path: [lib]``):

    network   staging, production        exports vpc_id and a secret token
    cluster   staging, production        depends on network/{stack}; reads its vpc_id
    tenants   "*" (acme, globex)         depends on network/production and
                                         cluster/production; imports lib/shared/naming.py
    audit     main                       independent of everything

Every program records when it ran (``out/runs/<stack>.txt``) and can be told to sleep
or fail by its stack config. An applied copy is built once per module and copied
into each test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.conftest import cli_env, run_cli
from stackwright.errors import ProgramError, ProjectError
from stackwright.model import context
from stackwright.model.context import ConfigSource, ProgramContext
from stackwright.model.values import Secret
from stackwright.program.workspace import load_workspace
from stackwright.state.sqlite import SqliteStateStore

WORKSPACE = """\
python_path: [lib]
projects:
  - path: network
    stacks: [staging, production]
  - path: cluster
    depends_on: ["network/{stack}"]
    stacks: [staging, production]
  - path: tenants
    stacks: "*"
    depends_on: [network/production, cluster/production]
  - path: audit
    stacks: [main]
"""

PRELUDE = """\
import pathlib, time
import stackwright as sw
from stackwright.providers import local

config = sw.Config()
_started = time.time()
time.sleep(config.get_float("sleep") or 0)
if config.get_bool("fail"):
    raise RuntimeError("told to fail")
"""

EPILOGUE = """\
_runs = pathlib.Path(__file__).parent / "out" / "runs"
_runs.mkdir(parents=True, exist_ok=True)
(_runs / f"{sw.get_stack()}.txt").write_text(f"{_started} {time.time()}")
"""

PROGRAMS = {
    "network": """\
local.File("vpc", path=sw.fmt("out/{}/vpc.txt", sw.get_stack()), content="10.0.0.0/16")
sw.export("vpc_id", f"vpc-{sw.get_stack()}")
sw.export("token", sw.secret("s3cr3t"))
""",
    "cluster": """\
network = sw.StackReference(f"network/{sw.get_stack()}")
local.File("kube", path=sw.fmt("out/{}/kube.txt", sw.get_stack()),
           content=sw.fmt("cluster in {}", network.output("vpc_id")))
sw.export("endpoint", f"https://{sw.get_stack()}.k8s.example")
""",
    "tenants": """\
from shared.naming import tenant_path

network = sw.StackReference("network/production")
cluster = sw.StackReference("cluster/production")
for name in config.require_object("tenants"):
    local.File(name, path=tenant_path(sw.get_stack(), name),
               content=sw.fmt("{} {} {}", name, network.output("vpc_id"), cluster.output("endpoint")))
sw.export("token", network.output("token"))
""",
    "audit": """\
local.File("log", path="out/audit.txt", content="audit")
""",
}

STACKS = {"network": ["staging", "production"], "cluster": ["staging", "production"],
          "tenants": ["acme", "globex"], "audit": ["main"]}
TENANTS = {"acme": ["a1", "a2"], "globex": ["g1"]}
EVERY_STACK = {f"{p}/{s}" for p, stacks in STACKS.items() for s in stacks}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


def commit(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def write_config(repo: Path, project: str, stack: str, **config: Any) -> None:
    if project == "tenants":
        config.setdefault("tenants", TENANTS.get(stack, ["t"]))
    path = repo / project / "stacks" / f"{stack}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"config": config}))


def write_repo(repo: Path) -> None:
    (repo / "stackwright-workspace.yaml").write_text(WORKSPACE)
    (repo / ".gitignore").write_text(".stackwright/\nout/\n__pycache__/\n")
    (repo / "lib" / "shared").mkdir(parents=True)
    (repo / "lib" / "shared" / "__init__.py").write_text("")
    (repo / "lib" / "shared" / "naming.py").write_text(
        'def tenant_path(stack, name):\n    return f"out/{stack}/{name}.txt"\n')
    (repo / "lib" / "unused.py").write_text("X = 1\n")
    for project, program in PROGRAMS.items():
        (repo / project).mkdir()
        (repo / project / "stackwright.yaml").write_text(f"name: {project}\n")
        (repo / project / "__main__.py").write_text(PRELUDE + program + EPILOGUE)
        for stack in STACKS[project]:
            write_config(repo, project, stack)
    git(repo, "init", "-q")
    commit(repo, "workspace")


def sw(repo: Path, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    return run_cli(cwd or repo, *args, env=cli_env(), timeout=180)


def ok(repo: Path, *args: str) -> str:
    code, out, err = sw(repo, *args)
    assert code == 0, f"stackwright {' '.join(args)} failed ({code}):\n{out}\n{err}"
    assert "Traceback" not in out + err, out + err
    return out


@pytest.fixture(scope="module")
def applied_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("template") / "repo"
    repo.mkdir()
    write_repo(repo)
    ok(repo, "run", "up", "--all", "--yes")
    return repo


@pytest.fixture
def repo(applied_template: Path, tmp_path: Path) -> Path:
    """An applied copy of the workspace, its git history included."""
    copy = tmp_path / "repo"
    shutil.copytree(applied_template, copy)
    return copy


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """The workspace committed but never applied."""
    repo = tmp_path / "fresh"
    repo.mkdir()
    write_repo(repo)
    return repo


def selected(out: str) -> set[str]:
    """The stacks a `run` printed as selected (the lines before the first one runs)."""
    head = out.split("\n... ", 1)[0]
    return set(re.findall(r"^  (\S+/\S+)  ", head, flags=re.M))


def history(repo: Path, ref: str) -> Any:
    project, stack = ref.split("/")
    store = SqliteStateStore(repo / project / ".stackwright" / "state.db")
    try:
        return store.history(stack)
    finally:
        store.close()


def ran(repo: Path, ref: str) -> tuple[float, float]:
    project, stack = ref.split("/")
    start, end = (repo / project / "out" / "runs" / f"{stack}.txt").read_text().split()
    return float(start), float(end)


# --- run up --all ---------------------------------------------------------------------

def test_up_all_applies_dependencies_first(fresh: Path) -> None:
    out = ok(fresh, "run", "up", "--all", "--yes")
    assert "run up: 7 stack(s)" in out and "7 ok" in out
    first = {ref: history(fresh, ref)[0] for ref in EVERY_STACK}
    for before, after in [("network/production", "cluster/production"),
                          ("network/staging", "cluster/staging"),
                          ("cluster/production", "tenants/acme"),
                          ("cluster/production", "tenants/globex"),
                          ("network/production", "tenants/acme")]:
        assert first[before].finished_at <= first[after].started_at, (before, after)
    content = (fresh / "tenants" / "out" / "acme" / "a1.txt").read_text()
    assert content == "a1 vpc-production https://production.k8s.example"
    assert (fresh / "cluster" / "out" / "staging" / "kube.txt").read_text() == "cluster in vpc-staging"


def test_a_fresh_workspace_previews_every_stack_with_planned_outputs(fresh: Path) -> None:
    out = ok(fresh, "run", "preview", "--all", "--diff")
    assert "run preview: 7 stack(s)" in out and "7 ok" in out
    assert out.count("is not initialized yet") == 7
    assert 'content: "cluster in vpc-staging"' in out  # network/staging's planned output
    assert 'content: "a1 vpc-production https://production.k8s.example"' in out
    assert not (fresh / "network" / "out" / "staging").exists(), "a preview changes nothing"


def test_destroy_all_removes_dependents_first(fresh: Path) -> None:
    repo = fresh
    ok(repo, "run", "up", "--all", "--yes")
    assert (repo / "tenants" / "out" / "acme" / "a1.txt").exists()
    out = ok(repo, "run", "destroy", "--all", "--yes")
    assert "run destroy: 7 stack(s)" in out and "7 ok" in out
    last = {ref: history(repo, ref)[-1] for ref in EVERY_STACK}
    assert all(cp.kind == "destroy" for cp in last.values())
    for before, after in [("tenants/acme", "cluster/production"), ("cluster/production", "network/production"),
                          ("cluster/staging", "network/staging")]:
        assert last[before].finished_at <= last[after].started_at, (before, after)
    assert not (repo / "tenants" / "out" / "acme" / "a1.txt").exists()


def test_a_secret_output_stays_secret_through_a_reference(repo: Path) -> None:
    code, out, err = sw(repo, "outputs", "-s", "acme", cwd=repo / "tenants")
    assert code == 0, err
    assert "token: [secret]" in out and "s3cr3t" not in out


def test_a_failed_stack_skips_only_its_dependents(fresh: Path) -> None:
    write_config(fresh, "network", "staging", fail=True)
    code, out, err = sw(fresh, "run", "up", "--all", "--yes")
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert "--- network/staging (up): failed" in out
    assert "told to fail" in out
    assert "--- cluster/staging: skipped (network/staging failed)" in out
    assert re.search(r"skipped\s+cluster/staging \(needs network/staging, which failed\)", out)
    assert "5 ok" in out
    assert not (fresh / "cluster" / "out" / "staging").exists()
    assert (fresh / "tenants" / "out" / "globex" / "g1.txt").exists()


def test_a_cycle_between_stacks_is_named_in_order(fresh: Path) -> None:
    text = WORKSPACE.replace("    stacks: [main]\n", "    stacks: [main]\n    depends_on: [tenants/acme]\n")
    text = text.replace("  - path: network\n", "  - path: network\n    depends_on: [audit/main]\n")
    (fresh / "stackwright-workspace.yaml").write_text(text)
    code, out, err = sw(fresh, "run", "preview", "--all")
    assert code == 1, out + err
    match = re.search(r"cycle: (.*)", err)
    assert match, err
    cycle = match.group(1).split(" -> ")
    assert len(cycle) >= 3 and cycle[0] == cycle[-1], cycle
    assert "audit/main" in cycle and "tenants/acme" in cycle
    for earlier, later in zip(cycle, cycle[1:]):  # in order: each depends on the next
        assert later in _declared(fresh, earlier), (earlier, later)


def _declared(repo: Path, ref: str) -> list[str]:
    workspace = load_workspace(repo / "stackwright-workspace.yaml")
    entry = workspace.stack(ref)
    assert entry is not None
    return workspace.dependencies(entry)


# --- --changed-since ------------------------------------------------------------------

def test_changed_config_selects_that_stack_and_its_dependents(repo: Path) -> None:
    write_config(repo, "network", "production", cidr="10.1.0.0/16")
    commit(repo)
    out = ok(repo, "run", "preview", "--changed-since", "HEAD~1")
    assert selected(out) == {"network/production", "cluster/production", "tenants/acme",
                             "tenants/globex"}
    assert "Selected 4 of 7 stacks" in out
    assert re.search(r"network/production\s+config changed: network/stacks/production.yaml", out)
    assert re.search(r"cluster/production\s+depends on network/production", out)
    assert "run preview: 4 stack(s)" in out and "4 ok" in out


def test_changed_tenant_config_selects_only_that_tenant(repo: Path) -> None:
    write_config(repo, "tenants", "globex", tenants=["g1", "g2"])
    commit(repo)
    out = ok(repo, "run", "preview", "--changed-since", "HEAD~1")
    assert selected(out) == {"tenants/globex"}
    assert "1 to create" in out


def test_a_changed_shared_module_selects_the_projects_that_import_it(repo: Path) -> None:
    naming = repo / "lib" / "shared" / "naming.py"
    naming.write_text(naming.read_text() + "# tweaked\n")
    (repo / "lib" / "unused.py").write_text("X = 2\n")
    commit(repo)
    out = ok(repo, "run", "preview", "--changed-since", "HEAD~1")
    assert selected(out) == {"tenants/acme", "tenants/globex"}
    assert re.search(r"tenants/acme\s+imports lib/shared/naming.py \(changed\)", out)


def test_a_changed_program_selects_every_stack_of_its_project_and_dependents(repo: Path) -> None:
    program = repo / "cluster" / "__main__.py"
    program.write_text(program.read_text() + "\n# tweak\n")
    out = ok(repo, "run", "preview", "--changed-since", "HEAD")  # uncommitted changes count
    assert selected(out) == {"cluster/staging", "cluster/production", "tenants/acme",
                             "tenants/globex"}


def test_code_in_a_nested_stacks_folder_is_program(repo: Path) -> None:
    """As the program digest counts it: only the top-level ``stacks/*.yaml`` and ``out/``
    are config and output (this repository's .gitignore leaves out every ``out/``)."""
    (repo / "cluster" / "lib" / "stacks").mkdir(parents=True)
    (repo / "cluster" / "lib" / "stacks" / "render.py").write_text("X = 1\n")
    out = ok(repo, "run", "preview", "--changed-since", "HEAD")
    assert selected(out) == {"cluster/staging", "cluster/production", "tenants/acme", "tenants/globex"}
    assert re.search(r"cluster/staging\s+program changed: cluster/lib/stacks/render.py", out)


def test_a_changed_workspace_entry_selects_that_project(repo: Path) -> None:
    text = (repo / "stackwright-workspace.yaml").read_text()
    (repo / "stackwright-workspace.yaml").write_text(text.replace("stacks: [main]", "stacks: [main]  # x\n    depends_on: []"))
    commit(repo)
    out = ok(repo, "run", "preview", "--changed-since", "HEAD~1")
    assert selected(out) == {"audit/main"}


def test_nothing_changed_selects_nothing(repo: Path) -> None:
    out = ok(repo, "run", "preview", "--changed-since", "HEAD")
    assert "Selected 0 of 7 stacks" in out and "Nothing to do." in out


def test_an_unknown_git_ref_is_a_clear_error(repo: Path) -> None:
    code, out, err = sw(repo, "run", "preview", "--changed-since", "no-such-ref")
    assert code == 1 and "Traceback" not in err
    assert "no-such-ref" in err and "hint:" in err


def test_a_new_stack_is_previewed_without_being_created(repo: Path) -> None:
    write_config(repo, "tenants", "initech", tenants=["i1"])
    out = ok(repo, "run", "preview", "--changed-since", "HEAD")
    assert selected(out) == {"tenants/initech"}
    assert "not initialized yet" in out and "1 to create" in out
    store = SqliteStateStore(repo / "tenants" / ".stackwright" / "state.db")
    try:
        assert not store.stack_exists("initech")
    finally:
        store.close()
    commit(repo)
    out = ok(repo, "run", "up", "--changed-since", "HEAD~1", "--yes")
    assert "Created 1 new stack(s): tenants/initech" in out
    assert (repo / "tenants" / "out" / "initech" / "i1.txt").exists()


# --- StackReference errors ------------------------------------------------------------

def test_a_reference_to_a_missing_output_names_stack_and_output(repo: Path) -> None:
    program = repo / "tenants" / "__main__.py"
    program.write_text(program.read_text().replace('network.output("vpc_id")', 'network.output("vpc")'))
    code, out, err = sw(repo, "run", "preview", "--changed-since", "HEAD")
    assert code == 1, out + err
    assert "stack network/production has no output 'vpc' (its outputs: token, vpc_id)" in out
    assert "__main__.py:" in out
    assert "Traceback" not in out + err


def test_a_reference_to_a_stack_never_applied_previews_unknown_and_refuses_apply(fresh: Path) -> None:
    code, out, err = run_cli(fresh / "cluster", "stack", "init", "production", env=cli_env())
    assert code == 0, err
    code, out, err = run_cli(fresh / "cluster", "preview", "--diff", "-s", "production", env=cli_env())
    assert code == 0, err
    assert "content: (known after apply)" in out
    code, out, err = run_cli(fresh / "cluster", "up", "--yes", "-s", "production", env=cli_env())
    assert code == 1 and "Traceback" not in out + err
    assert ("stack network/production has not been applied yet, so its output 'vpc_id' is "
            "unknown") in err
    assert "cluster/__main__.py:" in err
    assert not (fresh / "cluster" / "out" / "production" / "kube.txt").exists()


def test_a_reference_to_a_destroyed_stack_previews_unknown_and_refuses_apply(repo: Path) -> None:
    code, out, err = sw(repo, "destroy", "--yes", "-s", "staging", cwd=repo / "network")
    assert code == 0, err
    destroyed = ("stack network/staging was destroyed (it records no resources and no outputs), "
                 "so its output 'vpc_id' is unknown")
    kube = repo / "cluster" / "out" / "staging" / "kube.txt"
    code, out, err = sw(repo, "preview", "--diff", "-s", "staging", cwd=repo / "cluster")
    assert code == 0, err
    assert 'content: "cluster in vpc-staging" => (known after apply)' in out
    code, out, err = sw(repo, "up", "--yes", "-s", "staging", cwd=repo / "cluster")
    assert code == 1 and "Traceback" not in out + err
    assert destroyed in err and "cluster/__main__.py:" in err
    assert kube.read_text() == "cluster in vpc-staging"

    write_config(repo, "cluster", "staging", sleep=0)  # `run` reads network/staging from a shared store
    out = ok(repo, "run", "preview", "--changed-since", "HEAD", "--diff")
    assert selected(out) == {"cluster/staging"}
    assert 'content: "cluster in vpc-staging" => (known after apply)' in out
    code, out, err = sw(repo, "run", "up", "--changed-since", "HEAD", "--yes")
    assert code == 1 and destroyed in out + err
    assert kube.read_text() == "cluster in vpc-staging"


def test_an_undeclared_reference_is_an_error_naming_the_fix(repo: Path) -> None:
    program = repo / "audit" / "__main__.py"
    program.write_text(program.read_text().replace(
        'local.File("log"', 'sw.StackReference("network/production")\nlocal.File("log"'))
    code, out, err = sw(repo, "preview", "-s", "main", cwd=repo / "audit")
    assert code == 1
    assert "stack audit/main reads stack network/production, but" in err
    assert "does not declare that dependency" in err
    assert "depends_on: [network/production]" in err


# --- the workspace file ---------------------------------------------------------------

def _workspace_error(tmp_path: Path, text: str) -> ProjectError:
    for project in ("network", "cluster"):
        (tmp_path / project / "stacks").mkdir(parents=True, exist_ok=True)
        (tmp_path / project / "stackwright.yaml").write_text(f"name: {project}\n")
        (tmp_path / project / "__main__.py").write_text("")
        (tmp_path / project / "stacks" / "prod.yaml").write_text("config: {}\n")
    path = tmp_path / "stackwright-workspace.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ProjectError) as info:
        workspace = load_workspace(path)
        for stack in workspace.stacks():
            workspace.dependencies(stack)
    return info.value


def test_workspace_file_errors_name_file_and_line(tmp_path: Path) -> None:
    error = _workspace_error(tmp_path, """\
        projects:
          - path: network
            stacks: [prod]
          - path: cluster
            stacks: "*"
            depends_on: [network/production]
        """)
    assert error.file and error.file.endswith("stackwright-workspace.yaml") and error.line == 6
    assert "project 'network' has no stack 'production'" in error.message

    error = _workspace_error(tmp_path, """\
        projects:
          - path: network
            stack: [prod]
        """)
    assert error.line == 3 and "unknown key 'stack'" in error.message

    error = _workspace_error(tmp_path, """\
        projects:
          - path: nowhere
        """)
    assert error.line == 2 and "no stackwright.yaml" in error.message

    error = _workspace_error(tmp_path, "projects: [\n")
    assert "invalid YAML" in error.message


@pytest.mark.parametrize(("stacks", "has_file", "hint"), [
    ("[prod]", True, "add 'production' to the `stacks:` of project 'network' (line 3)"),
    ("[prod]", False, "create network/stacks/production.yaml and add 'production' to the `stacks:` of "
                      "project 'network' (line 3)"),
    ('"*"', False, "create network/stacks/production.yaml"),
])
def test_a_dependency_on_a_stack_not_in_the_workspace_says_only_what_is_missing(
        tmp_path: Path, stacks: str, has_file: bool, hint: str) -> None:
    if has_file:
        (tmp_path / "network" / "stacks").mkdir(parents=True)
        (tmp_path / "network" / "stacks" / "production.yaml").write_text("config: {}\n")
    error = _workspace_error(tmp_path, f"""\
        projects:
          - path: network
            stacks: {stacks}
          - path: cluster
            depends_on: [network/production]
        """)
    assert error.line == 5 and error.hint == hint


def test_workspace_stacks_and_dependencies(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_repo(repo)
    workspace = load_workspace(repo / "stackwright-workspace.yaml")
    assert {s.ref for s in workspace.stacks()} == EVERY_STACK
    cluster = workspace.stack("cluster/staging")
    assert cluster is not None and workspace.dependencies(cluster) == ["network/staging"]
    assert workspace.python_path == ((repo / "lib").resolve(),)
    assert workspace.project("tenants") is workspace.project("tenants/")


# --- StackReference in the model ------------------------------------------------------

@pytest.fixture
def reading_ctx() -> Iterator[ProgramContext]:
    outputs = {"network/production": {"vpc_id": "vpc-1", "token": Secret("s")}}
    ctx = ProgramContext(stack="dev", project="app", config=ConfigSource({}, "stacks/dev.yaml"),
                         read_stack_outputs=lambda ref: outputs[ref])
    with context.activate(ctx):
        yield ctx


def test_stack_reference_outputs_keep_secrets(reading_ctx: ProgramContext) -> None:
    import stackwright as sw_api

    network = sw_api.StackReference("network/production")
    assert network.output("vpc_id").resolve(lambda r, p: None) == "vpc-1"
    assert isinstance(network.output("token").resolve(lambda r, p: None), Secret)
    assert network.get_output("nope", "x").resolve(lambda r, p: None) == "x"
    assert reading_ctx.stack_references == {"network/production"}
    with pytest.raises(ProgramError, match="has no output 'nope'"):
        network.output("nope")


def test_a_stack_never_applied_or_an_unknown_output_is_an_unavailable_value() -> None:
    from stackwright.errors import StackNotApplied, StackReferenceError
    from stackwright.model.output import missing_in
    from stackwright.model.values import UNKNOWN

    import stackwright as sw_api

    def read(ref: str) -> Any:
        if ref == "network/production":
            raise StackNotApplied("never applied")
        return {"endpoint": {"url": UNKNOWN}}

    ctx = ProgramContext(stack="dev", project="app", config=ConfigSource({}, "stacks/dev.yaml"),
                         read_stack_outputs=read)
    with context.activate(ctx):
        vpc = sw_api.StackReference("network/production").output("vpc_id")
        maybe = sw_api.StackReference("network/production").get_output("zone", "z")
        endpoint = sw_api.StackReference("cluster/production").output("endpoint")
        with pytest.raises(ProgramError, match="has no output 'nope'"):
            sw_api.StackReference("cluster/production").output("nope")
    derived = sw_api.fmt("{}-{}", vpc, endpoint)
    assert derived.resolve(lambda r, p: None) is UNKNOWN
    assert maybe.resolve(lambda r, p: None) is UNKNOWN
    reasons = [str(e) for e in missing_in({"a": [derived]})]
    assert all(isinstance(e, StackReferenceError) for e in missing_in(derived))
    assert "stack network/production has not been applied yet, so its output 'vpc_id'" in reasons[0]
    assert "output 'endpoint' of stack cluster/production is unknown" in reasons[1]


def test_a_bare_stack_name_means_this_project(reading_ctx: ProgramContext) -> None:
    import stackwright as sw_api

    with pytest.raises(KeyError):
        sw_api.StackReference("staging")
    assert reading_ctx.stack_references == {"app/staging"}
    with pytest.raises(ProgramError, match="invalid stack reference"):
        sw_api.StackReference("/Prod")


# --- documents: --format markdown|json ------------------------------------------------

def test_run_preview_markdown_is_one_document_on_stdout(repo: Path) -> None:
    write_config(repo, "tenants", "globex", tenants=["g1", "g2"])
    write_config(repo, "tenants", "acme", tenants=["a1"])
    code, out, err = sw(repo, "run", "preview", "--changed-since", "HEAD", "--format", "markdown")
    assert code == 0, out + err
    assert out.startswith("<!-- stackwright:plan -->")
    assert "| `tenants/globex` | 1 | 0 | 0 | 0 | 1 |" in out
    assert "| `tenants/acme` | 0 | 0 | 0 | **1** | 1 |" in out
    assert "Selected 2 of 7 stacks" in err and "Selected" not in out
    assert "run preview: 2 stack(s)" in err


def test_run_preview_json_lists_every_stack_plan(repo: Path) -> None:
    import json

    write_config(repo, "tenants", "globex", tenants=["g1", "g2"])
    code, out, err = sw(repo, "run", "preview", "--changed-since", "HEAD", "--format", "json")
    assert code == 0, out + err
    document = json.loads(out)
    assert [s["ref"] for s in document["stacks"]] == ["tenants/globex"]
    assert document["stacks"][0]["summary"] == {"create": 1, "same": 1}
    assert document["not_done"] == []


def test_a_failed_stack_is_named_in_the_document_and_fails_the_command(repo: Path) -> None:
    write_config(repo, "network", "staging", fail=True)
    code, out, err = sw(repo, "run", "preview", "--changed-since", "HEAD", "--format", "markdown")
    assert code == 1
    assert "`network/staging`: failed" in out and "`cluster/staging`: skipped" in out
    assert "told to fail" in err


def test_run_plan_saves_a_plan_per_stack(repo: Path) -> None:
    write_config(repo, "tenants", "globex", tenants=["g1", "g2"])
    code, out, err = sw(repo, "run", "plan", "--changed-since", "HEAD", "--out-dir", "plans",
                        "--format", "markdown")
    assert code == 0, out + err
    assert (repo / "plans" / "tenants" / "globex.plan").is_file()
    assert "| `tenants/globex` | 1 | 0 | 0 | 0 | 1 |" in out


def test_run_plan_saves_a_plan_for_a_new_stack_and_applying_it_creates_the_stack(repo: Path) -> None:
    """A stack the state does not have yet is planned against an empty state (`run plan
    --out-dir` used to refuse it: "not initialized yet"); its apply creates it, not
    before it is confirmed. A plan made for it before it existed is refused once it does."""
    write_config(repo, "tenants", "initech", tenants=["i1"])
    for folder in ("plans", "again"):
        out = ok(repo, "run", "plan", "--changed-since", "HEAD", "--out-dir", folder)
        assert "tenants/initech is not initialized yet; applying its saved plan creates it" in out
    tenants, plan = repo / "tenants", str(repo / "plans" / "tenants" / "initech.plan")
    code, _, err = sw(repo, "apply", plan, cwd=tenants)
    assert code == 1 and "without confirmation" in err
    with SqliteStateStore(tenants / ".stackwright" / "state.db") as store:
        assert not store.stack_exists("initech")
        [attempt] = store.events("initech", kinds=("attempt",))  # recorded, although no stack yet
        assert (attempt.data["command"], attempt.data["stage"]) == ("apply", "confirmation")
    code, out, err = sw(repo, "apply", plan, "--yes", cwd=tenants)
    assert code == 0 and "Applied plan" in out, out + err
    assert (tenants / "out" / "initech" / "i1.txt").read_text().startswith("i1 vpc-production")
    code, _, err = sw(repo, "apply", str(repo / "again" / "tenants" / "initech.plan"), "--yes", cwd=tenants)
    assert code == 1 and "made for a new stack, and another stack of that name was created since" in err
