"""Saved plans in process: the file is exactly what `plan` wrote, and apply refuses a
plan whose pins no longer hold (tests/workflow/test_plans_approvals.py drives the same
through the CLI).

The program writes two local files, one holding a secret, and reads ``../motd.txt``:
data outside the project folder, so outside the program's digest, so changing it makes
planning now differ from the saved plan while the program, config and state stay the same.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from stackwright.engine.apply import ApplyOptions
from stackwright.engine.events import EventSink
from stackwright.operations.session import StackSession, open_session
from stackwright.operations.update import UpdateOutcome, preview
from stackwright.program.digest import program_digest
from stackwright.program.project import Project, load_project
from stackwright.providers.registry import ProviderRegistry
from stackwright.workflow import approvals, plan_file, signing
from stackwright.workflow.approvals import NotApproved, UnknownPlan
from stackwright.workflow.gate import GateClosed
from stackwright.plan.compare import differences
from stackwright.workflow.plan_file import (
    NEW_PLAN_HINT,
    PlanDiffers, PlanFileError, PlanTampered, PolicyBlocked, SourceChanged, StalePlan, WrongTarget,
    content_hash, read_plan_file, render, save_plan, write_plan_file,
)
from stackwright.workflow.secrets import stack_keyring
from unit.workflow_projects import no_signing_key, session_of, write_project  # noqa: F401  (fixture)

PROGRAM = """\
import pathlib

import stackwright as sw
from stackwright.providers import local

config = sw.Config()
motd = pathlib.Path("../motd.txt").read_text()
local.File("site", path=sw.fmt("out/{}/index.html", sw.get_stack()),
           content=sw.fmt("<h1>{}</h1>{}", config.require_str("greeting"), motd))
local.File("creds", path=sw.fmt("out/{}/creds.env", sw.get_stack()),
           content=sw.secret("PASSWORD=hunter2"), mode=0o600)
"""
ENVIRONMENTS: dict[str, Any] = {"dev": {}, "production": {"protected": True, "required_approvals": 1},
                                "gated": {"gate": "dev"}}
CONFIG = {"config": {"greeting": "hello"}}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_signing_key: Path) -> Project:
    root = tmp_path / "proj"
    project = write_project(root, ENVIRONMENTS, stacks=["dev", "production", "gated"],
                            stack_files=dict.fromkeys(["dev", "production", "gated"], CONFIG),
                            signers={"bob": ["bob"]})
    (root / "__main__.py").write_text(PROGRAM)
    (root.parent / "motd.txt").write_text("welcome")
    monkeypatch.chdir(root)
    return project


def session(project: Project, stack: str = "dev", who: str = "tester",
            registry: ProviderRegistry | None = None) -> StackSession:
    return open_session(project, stack, who, registry=registry)


def make_plan(project: Project, stack: str = "dev", name: str = "plan.json", **kwargs: Any) -> plan_file.Written:
    opened = session(project, stack)
    try:
        return save_plan(opened, project.root / name, **kwargs)
    finally:
        opened.close()


def apply(project: Project, path: Path | str = "plan.json", stack: str | None = None,
          who: str = "tester") -> UpdateOutcome:
    saved = read_plan_file(project.root / path)
    opened = session(project, stack or saved.stack, who)
    try:
        return plan_file.apply_plan_file(opened, saved, options=ApplyOptions(parallel=2), sink=EventSink(),
                                         confirm=lambda plan: True)
    finally:
        opened.close()


def refused(project: Project, kind: type[Exception], path: str = "plan.json", stack: str | None = None,
            hint: str | None = None) -> str:
    """The message of the refusal to apply; its hint must be ``hint`` when given."""
    with pytest.raises(kind) as caught:
        apply(project, path, stack)
    if hint is not None:
        assert getattr(caught.value, "hint", None) == hint
    return str(getattr(caught.value, "message", caught.value))


def document(project: Project, name: str = "plan.json") -> dict[str, Any]:
    return dict(json.loads((project.root / name).read_bytes()))


def rewrite(project: Project, doc: dict[str, Any], name: str = "plan.json", rehash: bool = True) -> None:
    """An edit by someone who recomputes the hash and renders the file as `plan` would."""
    if rehash:
        doc["hash"] = content_hash(doc)
    (project.root / name).write_bytes(render(doc))


# --- writing and reading the file -----------------------------------------------------


def test_a_saved_plan_reads_back_whole_and_is_recorded(project: Project) -> None:
    started = time.monotonic()
    written = make_plan(project)
    took = time.monotonic() - started
    saved = read_plan_file(project.root / "plan.json")
    assert (project.root / "plan.json").read_bytes() == render(saved.document)
    assert saved.hash == content_hash(saved.document) == written.saved.hash
    assert saved.short == saved.hash[:12] and saved.stack == "dev"
    with session_of(project, "dev", "x") as s:
        assert saved.plan(stack_keyring(s)) == written.plan
        [event] = s.store.events("dev", kinds=(approvals.PLAN,))
    assert event.who == "tester"
    assert {k: event.data[k] for k in ("plan_hash", "program_digest", "config_digest", "base_serial", "counts",
                                        "path", "environment", "advisories")} == {
        "plan_hash": saved.hash, "program_digest": written.plan.program_digest,
        "config_digest": written.plan.config_digest, "base_serial": 0, "counts": {"create": 2},
        "path": str(project.root / "plan.json"), "environment": "dev", "advisories": 0}
    assert 0 <= event.data["preview_seconds"] <= took
    assert (saved.get("format"), saved.get("version"), saved.get("created_by"), saved.get("environment"),
            saved.get("allow_destroy"), saved.get("summary"), saved.get("violations"), saved.get("nothing")) == (
        "stackwright-plan", 2, "tester", "dev", False, {"create": 2}, [], None)
    created = datetime.strptime(saved.get("created_at"), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(created.timestamp() - event.at) < 86400, "UTC, as the audit log"


def test_the_preview_time_is_recorded_to_the_millisecond(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The web view's preview-time histogram reads it from the ``plan`` event."""
    clock = iter([1000.0, 1001.2345678])
    monkeypatch.setattr(plan_file, "time", SimpleNamespace(monotonic=lambda: next(clock), time=time.time))
    written = make_plan(project)
    assert written.saved.path == project.root / "plan.json"
    with session_of(project, "dev", "x") as s:
        [event] = s.store.events("dev", kinds=(approvals.PLAN,))
    assert event.data["preview_seconds"] == 1.235


def test_a_plan_signed_by_its_author_binds_the_key_that_may_then_not_approve_it(project: Project) -> None:
    """`plan --key`: the author's signature of the plan hash, recorded in the ``plan`` event,
    so that the same key cannot approve the plan under another listed name."""
    signers = project.root / "allowed_signers"
    signers.write_text(signers.read_text().replace("bob namespaces=", "bob,tester namespaces="))
    bob = str(project.root.parent / "keys" / "bob")
    written = make_plan(project, "production", key=bob)
    fingerprint = signing.fingerprint(signing.load_signing_key(Path(bob)).blob)
    with session_of(project, "production", "x") as s:
        [event] = s.store.events("production", kinds=(approvals.PLAN,))
    assert event.data["key"] == fingerprint
    assert signing.verify(event.data["signature"], written.saved.hash.encode(), "tester",
                          approvals.project_signers(project)) == fingerprint
    with session_of(project, "production", "bob") as s, pytest.raises(approvals.ApprovalRefused) as caught:
        approvals.approve(s, written.saved.hash, key=bob)
    assert caught.value.message.endswith(f"key {fingerprint} signed the plan, and self-approval is off")


def test_the_file_holds_no_plain_secret_and_shows_it_masked_without_a_key(project: Project) -> None:
    make_plan(project)
    text = (project.root / "plan.json").read_text()
    assert "hunter2" not in text and "$encrypted" in text and "welcome" in text
    saved = read_plan_file(project.root / "plan.json")
    creds = next(s for s in saved.pins.steps if s.urn.endswith("creds"))
    assert creds.inputs is not None and creds.inputs["content"].value is None


def test_declarations_are_relative_to_the_project(project: Project) -> None:
    written = make_plan(project)
    assert {s.decl for s in written.plan.steps} == {"__main__.py:8", "__main__.py:10"}
    assert str(project.root) not in (project.root / "plan.json").read_text()


def test_declarations_are_relative_even_under_a_folder_with_a_colon(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "team:infra" / "proj"
    project = write_project(root, ENVIRONMENTS, stacks=["dev"], stack_files={"dev": CONFIG})
    (root / "__main__.py").write_text(PROGRAM)
    (root.parent / "motd.txt").write_text("welcome")
    monkeypatch.chdir(root)
    assert {s.decl for s in make_plan(project).plan.steps} == {"__main__.py:8", "__main__.py:10"}


def test_two_plans_of_the_same_change_are_two_plans(project: Project) -> None:
    assert make_plan(project).saved.hash != make_plan(project, name="again.json").saved.hash


def test_a_missing_file_is_named(project: Project) -> None:
    with pytest.raises(PlanFileError) as caught:
        read_plan_file(project.root / "nope.json")
    assert caught.value.message == f"cannot read plan file {project.root / 'nope.json'}: No such file or directory"
    assert caught.value.hint == "pass the file `stackwright plan --out` wrote"


@pytest.mark.parametrize("content", [b"", b"{\"format\": \"stackwright-plan\"", b"\xff\xfe",
                                     b"[1, 2]", b"{\"format\": \"other\"}", b"{\"format\": \"stackwright-plan\", \"x\": NaN}"])
def test_an_unreadable_file_is_refused(project: Project, content: bytes) -> None:
    (project.root / "plan.json").write_bytes(content)
    with pytest.raises(PlanTampered) as caught:
        read_plan_file(project.root / "plan.json")
    assert caught.value.message == (f"{project.root / 'plan.json'} is not a readable Stackwright plan file "
                                    "(altered or truncated)")
    assert caught.value.hint == NEW_PLAN_HINT


def test_an_edited_value_is_refused(project: Project) -> None:
    make_plan(project)
    doc = document(project)
    doc["allow_destroy"] = True
    rewrite(project, doc, rehash=False)
    with pytest.raises(PlanTampered, match="its content hash does not match") as caught:
        read_plan_file(project.root / "plan.json")
    assert caught.value.hint == NEW_PLAN_HINT


def test_a_whitespace_edit_is_refused(project: Project) -> None:
    make_plan(project)
    path = project.root / "plan.json"
    path.write_bytes(path.read_bytes().replace(b'": ', b'":  ', 1))
    with pytest.raises(PlanTampered, match="not byte for byte as Stackwright wrote it") as caught:
        read_plan_file(path)
    assert caught.value.hint == NEW_PLAN_HINT


def test_an_edit_with_the_hash_recomputed_is_another_plan_never_recorded(project: Project) -> None:
    make_plan(project)
    doc = document(project)
    doc["created_by"] = "alice"
    rewrite(project, doc)
    assert read_plan_file(project.root / "plan.json").get("created_by") == "alice"
    assert "was never recorded for stack 'dev'" in refused(project, UnknownPlan)


NEWER_HINT = "apply it with the Stackwright that made it"


@pytest.mark.parametrize(("version", "kind", "message", "hint"), [
    (3, PlanFileError, "is a version 3 plan file; this Stackwright reads version 2", NEWER_HINT),
    (1, PlanFileError, "is a version 1 plan file, which this Stackwright no longer applies", NEW_PLAN_HINT),
    ("2", PlanTampered, "is not a valid plan file (version '2')", NEW_PLAN_HINT),
    (True, PlanTampered, "is not a valid plan file (version True)", NEW_PLAN_HINT),
    (None, PlanTampered, "is not a valid plan file (version None)", NEW_PLAN_HINT),
])
def test_other_versions_are_refused(project: Project, version: Any, kind: type[Exception], message: str,
                                    hint: str) -> None:
    make_plan(project)
    doc = document(project)
    doc["version"] = version
    rewrite(project, doc)
    with pytest.raises(PlanFileError) as caught:
        read_plan_file(project.root / "plan.json")
    assert type(caught.value) is kind and caught.value.message.endswith(message)
    assert caught.value.hint == hint


def test_a_newer_version_is_named_even_when_it_does_not_hash_alike(project: Project) -> None:
    make_plan(project)
    doc = document(project)
    doc["version"] = 3
    rewrite(project, doc, rehash=False)
    with pytest.raises(PlanFileError, match="is a version 3 plan file"):
        read_plan_file(project.root / "plan.json")


@pytest.mark.parametrize("edit", ["no plan", "steps not a list", "plan not a mapping", "unknown op"])
def test_a_consistent_file_without_a_valid_plan_is_refused(project: Project, edit: str) -> None:
    make_plan(project)
    doc = document(project)
    if edit == "no plan":
        del doc["plan"]
    elif edit == "steps not a list":
        doc["plan"]["steps"] = 7
    elif edit == "unknown op":
        doc["plan"]["steps"][0]["op"] = "explode"
    else:
        doc["plan"] = "plan"
    rewrite(project, doc)
    saved = read_plan_file(project.root / "plan.json")
    with pytest.raises(PlanTampered) as caught:
        saved.plan(None)
    assert caught.value.message.startswith(f"{project.root / 'plan.json'} is not a valid plan file (")
    assert caught.value.hint == NEW_PLAN_HINT


def test_writing_is_atomic(project: Project) -> None:
    target = project.root / "deep" / "er" / "plan.json"
    write_plan_file(target, {"format": "stackwright-plan", "n": 1})
    assert json.loads(target.read_bytes()) == {"format": "stackwright-plan", "n": 1}
    with pytest.raises(ValueError):
        write_plan_file(target, {"n": float("nan")})
    assert json.loads(target.read_bytes()) == {"format": "stackwright-plan", "n": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["plan.json"]


def test_the_file_is_written_beside_the_plan_under_a_hidden_name(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The half-written file sits in the plan's folder, so the rename that publishes it is
    atomic (one filesystem, whatever TMPDIR is), and one left by a killed `plan` is hidden and
    named for the plan it was to become."""
    import os
    import tempfile

    renamed: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def replace(source: str, target: Path) -> None:
        renamed.append((Path(source), Path(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))
    target = tmp_path / "plans" / "plan.json"
    write_plan_file(target, {"format": "stackwright-plan"})
    [(source, published)] = renamed
    assert published == target and source.parent == target.parent
    assert source.name.startswith(".plan.json.") and len(source.name) > len(".plan.json.")


def test_the_rendered_file_is_indented_sorted_ascii_with_a_final_newline() -> None:
    assert render({"b": "é", "a": [1]}) == b'{\n  "a": [\n    1\n  ],\n  "b": "\\u00e9"\n}\n'
    assert content_hash({"b": "é", "a": 1, "hash": "x"}) == content_hash({"a": 1, "b": "é"})
    assert content_hash({"a": 1}) == "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"


def test_anyone_can_recompute_the_hash_as_docs_plan_file_says(project: Project) -> None:
    """docs/plan-file.md: SHA-256 of json.dumps(doc_without_hash, sort_keys=True,
    separators=(",", ":"), ensure_ascii=True), UTF-8."""
    (project.root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"config": {"greeting": "grüß dich"}}))
    written = make_plan(project)
    doc = document(project)
    body = {k: v for k, v in doc.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert "\\u00fc" in text
    assert doc["hash"] == hashlib.sha256(text.encode("utf-8")).hexdigest() == written.saved.hash
    assert len(doc["id"]) == 32 and int(doc["id"], 16) >= 0


# --- applying --------------------------------------------------------------------------


def test_apply_runs_exactly_the_plan_and_records_it(project: Project) -> None:
    written = make_plan(project)
    outcome = apply(project)
    assert outcome.plan == written.plan and outcome.result is not None and outcome.result.ok
    assert (project.root / "out/dev/index.html").read_text() == "<h1>hello</h1>welcome"
    assert (project.root / "out/dev/creds.env").read_text() == "PASSWORD=hunter2"
    with session_of(project, "dev", "x") as s:
        [event] = s.store.events("dev", kinds=(approvals.APPLY,))
    assert (event.data["plan_hash"], event.data["path"], event.data["approved_by"]) == (
        written.saved.hash, str(project.root / "plan.json"), [])


def test_a_plan_for_another_stack_is_refused(project: Project) -> None:
    made = make_plan(project)
    assert refused(project, WrongTarget, stack="production", hint=NEW_PLAN_HINT) == (
        f"plan {made.saved.short} is for stack 'dev', not 'production'")


def test_a_plan_for_another_project_is_refused(project: Project) -> None:
    made = make_plan(project)
    settings = yaml.safe_load((project.root / "stackwright.yaml").read_text())
    (project.root / "stackwright.yaml").write_text(yaml.safe_dump({**settings, "name": "other"}))
    moved = load_project(project.root)
    assert refused(moved, WrongTarget) == f"plan {made.saved.short} is for project 'proj', not 'other'"


def test_a_plan_for_an_earlier_incarnation_of_the_stack_is_refused(project: Project) -> None:
    made = make_plan(project)
    with session_of(project, "dev", "x") as s:
        lineage = next(i.lineage for i in s.store.list_stacks() if i.name == "dev")
        s.store.remove_stack("dev", force=True)
        s.store.create_stack("dev")
    message = refused(project, WrongTarget)
    assert message.startswith(f"plan {made.saved.short} is for lineage {lineage!r}, not ")
    assert message.endswith(" (the stack was removed and created again since)")


def test_a_changed_program_is_refused(project: Project) -> None:
    made = make_plan(project)
    (project.root / "__main__.py").write_text(PROGRAM + "# edited\n")
    assert refused(project, SourceChanged, hint=f"restore the program the plan was made from, or {NEW_PLAN_HINT}") == (
        f"the program changed since plan {made.saved.short} was made (__main__.py changed)")


SHARED_CODE_PROGRAM = """\
import stackwright as sw
from stackwright.providers import local, random

from helper import render as helper_render
from lib.stacks.render import render as nested_render

site = random.Id("site", byte_length=4)  # known only after apply: so are the files' contents
local.File("nested", path="out/nested.html", content=site.hex.apply(nested_render))
local.File("helper", path="out/helper.html", content=site.hex.apply(helper_render))
"""
RENDER = 'def render(x):\n    return f"<p>site {x}</p>"\n'
PLAN_LIKE_HEAD = '{\n  "format": "stackwright-plan",\n  "x": 1}\n'
"""How a saved plan starts, and a Python expression: a module may begin so."""


@pytest.fixture
def shared_code(project: Project) -> Project:
    """A program whose files' contents, computed at apply time, come from a module in a
    nested ``stacks`` folder and from one that starts as a saved plan starts."""
    (project.root / "__main__.py").write_text(SHARED_CODE_PROGRAM)
    (project.root / "lib" / "stacks").mkdir(parents=True)
    (project.root / "lib" / "stacks" / "render.py").write_text(RENDER)
    (project.root / "helper.py").write_text(PLAN_LIKE_HEAD + RENDER)
    return project


@pytest.mark.parametrize("relative", ["lib/stacks/render.py", "helper.py"])
def test_code_changed_after_the_plan_in_a_nested_stacks_folder_or_looking_like_a_plan_is_refused(
        shared_code: Project, relative: str) -> None:
    made = make_plan(shared_code)
    path = shared_code.root / relative
    path.write_text(path.read_text().replace("<p>site {x}</p>", "EVIL {x}"))
    assert refused(shared_code, SourceChanged) == (
        f"the program changed since plan {made.saved.short} was made ({relative} changed)")
    assert not (shared_code.root / "out").exists()


def test_bytecode_put_beside_the_program_after_the_plan_is_not_run(shared_code: Project) -> None:
    """``__pycache__`` is not in the digest; Python would run a bytecode file there whose
    header matches the source (an unchecked hash-based one always does): the program's
    modules are compiled from their source instead."""
    import importlib.util
    import py_compile

    make_plan(shared_code)
    evil = shared_code.root.parent / "evil.py"
    evil.write_text(RENDER.replace("<p>site {x}</p>", "EVIL {x}"))
    for relative in ("lib/stacks/render.py", "helper.py"):
        cached = importlib.util.cache_from_source(str(shared_code.root / relative))
        py_compile.compile(str(evil), cfile=cached, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    apply(shared_code)
    for name in ("nested", "helper"):
        assert (shared_code.root / "out" / f"{name}.html").read_text().startswith("<p>site ")


def test_a_changed_config_is_refused(project: Project) -> None:
    made = make_plan(project)
    (project.root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"config": {"greeting": "hi"}}))
    assert refused(project, SourceChanged, hint=f"restore the config the plan was made from, or {NEW_PLAN_HINT}") == (
        f"the config changed since plan {made.saved.short} was made "
                                               "(stacks/dev.yaml)")


def test_a_stale_plan_is_refused(project: Project) -> None:
    made = make_plan(project)
    make_plan(project, name="first.json")
    apply(project, "first.json")
    with session_of(project, "dev", "x") as s:
        serial = s.store.snapshot("dev").serial
    assert serial > 0
    assert refused(project, StalePlan, hint=NEW_PLAN_HINT) == (f"stack 'dev' changed since plan {made.saved.short} was made "
                                           f"(state serial 0, now {serial})")


def test_a_plan_that_would_now_do_something_else_is_refused(project: Project) -> None:
    make_plan(project)
    (project.root.parent / "motd.txt").write_text("changed")
    message = refused(project, PlanDiffers, hint=NEW_PLAN_HINT)
    assert message.startswith("applying would do something the plan did not say: ")
    assert "more difference" not in message
    assert not (project.root / "out").exists()


def test_a_plan_differing_in_several_ways_says_how_many(project: Project) -> None:
    make_plan(project)
    (project.root.parent / "motd.txt").write_text("changed")
    (project.root / "__main__.py").write_text(PROGRAM.replace('mode=0o600', 'mode=0o640'))
    with session_of(project, "dev", "x") as s:
        saved = read_plan_file(project.root / "plan.json")
        now = save_plan(s, project.root / "now.json").plan
    with pytest.raises(PlanDiffers) as caught:
        plan_file.check_same_plan(saved.plan(None), now)
    problems = differences(saved.plan(None), now)
    assert len(problems) == 2
    assert caught.value.message == (f"applying would do something the plan did not say: {problems[0]} "
                                    "(and 1 more difference(s))")
    assert caught.value.hint == NEW_PLAN_HINT
    one = replace(now, steps=tuple(s if s.urn.endswith("creds") else saved.plan(None).steps[i]
                                   for i, s in enumerate(now.steps)))
    with pytest.raises(PlanDiffers) as caught:
        plan_file.check_same_plan(saved.plan(None), one)
    [problem] = differences(saved.plan(None), one)
    assert caught.value.message == f"applying would do something the plan did not say: {problem}"
    plan_file.check_same_plan(now, now)


def test_other_provider_versions_are_refused(project: Project) -> None:
    """What the registry reports after planning is what apply compares with the pins."""
    made = make_plan(project)
    saved = read_plan_file(project.root / "plan.json")
    pinned = saved.pins.providers
    assert pinned, "the plan pins the versions of the providers it uses"
    name = sorted(pinned)[0]
    for now, message in (
        ({**pinned, "fake": "1.0"}, f"provider 'fake' is version 1.0 now; plan {made.saved.short} was made with none"),
        ({}, f"provider {name!r} is version not used now; plan {made.saved.short} was made with {pinned[name]}"),
        ({**pinned, name: "9.9"}, f"provider {name!r} is version 9.9 now; plan {made.saved.short} was made "
                                  f"with {pinned[name]}"),
    ):
        with session_of(project, "dev", "x") as s:
            preview(s)
            plan_file.check_providers(s, saved)
            s.providers.versions = lambda now=now: now  # type: ignore[method-assign, misc]
            with pytest.raises(SourceChanged) as caught:
                plan_file.check_providers(s, saved)
        assert caught.value.message == message
        assert caught.value.hint == f"install the provider version the plan was made with, or {NEW_PLAN_HINT}"


def test_a_provider_upgraded_since_the_plan_was_made_is_refused_under_the_lock(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from stackwright.providers import local

    made = make_plan(project)
    monkeypatch.setattr(local, "VERSION", "99.0")
    message = refused(project, SourceChanged)
    assert message.startswith("provider 'local' is version 99.0 now; plan " + made.saved.short)
    assert not (project.root / "out").exists()


def test_a_plan_is_not_made_while_operations_are_interrupted(project: Project) -> None:
    from stackwright.errors import StateError
    from stackwright.state.records import PendingOperation

    with session_of(project, "dev", "x") as s:
        s.store.begin("dev", "up", "crash").record_pending(PendingOperation(
            token="t", urn="dev::proj::local:File::site", type="local:File", op="create", inputs={}))
    with pytest.raises(StateError, match="1 operation"):
        make_plan(project)
    assert not (project.root / "plan.json").exists()


def test_a_protected_plan_needs_an_approval_before_it_applies(project: Project) -> None:
    made = make_plan(project, "production")
    assert "needs 1 approval(s)" in refused(project, NotApproved)
    with session_of(project, "production", "bob") as s:
        approvals.approve(s, made.saved.hash, key=str(project.root.parent / "keys" / "bob"))
    outcome = apply(project)
    assert outcome.result is not None and outcome.result.ok
    with session_of(project, "production", "x") as s:
        [event] = s.store.events("production", kinds=(approvals.APPLY,))
    assert event.data["approved_by"] == ["bob"]


def test_a_rejected_plan_is_refused(project: Project) -> None:
    made = make_plan(project)
    with session_of(project, "dev", "bob") as s:
        approvals.reject(s, made.saved.hash, "no")
    assert "was rejected by bob" in refused(project, NotApproved)


def test_a_gated_plan_needs_the_gate_to_have_applied_its_program(project: Project) -> None:
    with session_of(project, "dev", "x") as s:
        s.store.record_event("dev", "up", "tester", {"result": "succeeded", "program_digest": program_digest(project)})
    make_plan(project, "gated")
    with session_of(project, "dev", "x") as s:
        s.store.record_event("dev", "up", "tester", {"result": "succeeded", "program_digest": "0" * 64})
    assert "is gated on dev" in refused(project, GateClosed)


def test_the_gate_is_checked_before_writing_a_plan(project: Project) -> None:
    with pytest.raises(GateClosed):
        make_plan(project, "gated")
    assert not (project.root / "plan.json").exists()


# --- policies --------------------------------------------------------------------------

MANY_VIOLATIONS = """\
import stackwright as sw


def policy_no_files(plan):
    for n in range(5):
        yield sw.Violation(f"objection {n}")
"""


def test_mandatory_violations_block_writing_and_are_summed_up(project: Project) -> None:
    (project.root / "policies").mkdir()
    (project.root / "policies" / "many.py").write_text(MANY_VIOLATIONS)
    with pytest.raises(PolicyBlocked) as caught:
        make_plan(project)
    assert caught.value.message == ("plan not written: 5 mandatory policy violation(s): policy_no_files: objection 0; "
                                    "policy_no_files: objection 1; policy_no_files: objection 2; and 2 more")
    assert len(caught.value.violations) == 5
    assert caught.value.hint == ("fix the resources, or make the policy advisory for this environment in "
                                 "stackwright.yaml (or pass --allow-destroy if you mean to delete)")
    assert not (project.root / "plan.json").exists()
    with session_of(project, "dev", "x") as s:
        assert s.store.events("dev", kinds=(approvals.PLAN,)) == []


FREEZE = """\
import os


def policy_freeze(plan):
    if os.environ.get("FREEZE"):
        return "a change freeze is on"
"""
"""A freeze the policy reads from the environment: a file in the project folder would
change the program (its digest covers every file there)."""


@pytest.mark.parametrize(("count", "more"), [(3, ""), (4, "; and 1 more")])
def test_a_refusal_lists_three_violations_and_counts_the_rest(project: Project, count: int, more: str) -> None:
    (project.root / "policies").mkdir()
    (project.root / "policies" / "many.py").write_text(MANY_VIOLATIONS.replace("range(5)", f"range({count})"))
    with pytest.raises(PolicyBlocked) as caught:
        make_plan(project)
    assert caught.value.message == (f"plan not written: {count} mandatory policy violation(s): policy_no_files: "
                                    "objection 0; policy_no_files: objection 1; policy_no_files: objection 2" + more)


def test_policies_are_judged_again_when_the_plan_is_applied(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    (project.root / "policies").mkdir()
    (project.root / "policies" / "freeze.py").write_text(FREEZE)
    make_plan(project)
    monkeypatch.setenv("FREEZE", "1")
    assert refused(project, PolicyBlocked) == ("plan not applied: 1 mandatory policy violation(s): policy_freeze: "
                                               "a change freeze is on")
    assert not (project.root / "out").exists()


def test_the_stacks_environment_sets_the_enforcement_at_apply_too(project: Project,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (project.root / "policies").mkdir()
    (project.root / "policies" / "freeze.py").write_text(FREEZE)
    settings = yaml.safe_load((project.root / "stackwright.yaml").read_text())
    settings["environments"]["dev"] = {"policies": {"policy_freeze": "advisory"}}
    (project.root / "stackwright.yaml").write_text(yaml.safe_dump(settings))
    project = load_project(project.root)
    monkeypatch.setenv("FREEZE", "1")
    assert [v.mandatory for v in make_plan(project).violations] == [False]
    outcome = apply(project)
    assert outcome.result is not None and outcome.result.ok


def test_advisory_violations_are_written_into_the_plan(project: Project) -> None:
    (project.root / "policies").mkdir()
    (project.root / "policies" / "many.py").write_text(MANY_VIOLATIONS.replace("def policy_no_files",
                                                                              "@sw.policy(enforcement='advisory')\ndef policy_no_files"))
    written = make_plan(project)
    assert written.saved.get("violations")[:1] == [
        {"policy": "policy_no_files", "message": "objection 0", "urn": None, "mandatory": False}]
    assert len(written.violations) == 5


def test_a_delete_needs_the_allow_destroy_the_plan_was_made_with(project: Project,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from stackwright.providers.local import FileProvider

    make_plan(project, name="first.json")
    apply(project, "first.json")
    monkeypatch.setattr(FileProvider, "stateful", True)  # as if a file held data, like a bucket
    (project.root / "__main__.py").write_text(PROGRAM.replace("local.File(\"creds\"", "dict(name=\"creds\""))
    with pytest.raises(PolicyBlocked, match="plan not written: 1 mandatory policy violation"):
        make_plan(project)
    written = make_plan(project, allow_destroy=True)
    assert written.saved.get("allow_destroy") is True
    outcome = apply(project)
    assert outcome.result is not None and outcome.result.ok
    assert not (project.root / "out/dev/creds.env").exists()


def test_a_preview_hands_a_one_shot_caller_what_it_planned_from(project: Project) -> None:
    """`stackwright preview` leaves them to the process's end instead of freeing them."""
    from stackwright.model.desired import DesiredGraph
    from stackwright.state.records import Snapshot

    kept: list[Any] = []
    with session_of(project, "dev", "x") as s:
        plan = preview(s, keep=kept)
    desired, snapshot = kept
    assert isinstance(desired, DesiredGraph) and isinstance(snapshot, Snapshot)
    assert list(desired.resources) == [step.urn for step in plan.steps]
    assert (snapshot.stack, snapshot.serial) == ("dev", plan.base_serial)
