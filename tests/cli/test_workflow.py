"""The everyday workflow through the real `stackwright` command, as a user sees it."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest

from cli.conftest import CliProject, cli_env, run_cli
from stackwright.state.records import SCHEMA_VERSION

# A site page from config, a generated password and a credentials file holding it.
BASIC = """\
config = sw.Config()
greeting = config.require_str("greeting")

password = random.Password("db-password", length=20)
site = local.File(
    "site",
    path=sw.fmt("out/{}/index.html", sw.get_stack()),
    content=sw.fmt("<h1>{}</h1>", greeting),
)
creds = local.File("creds", path="out/creds.env", content=sw.fmt("PASSWORD={}", password.result),
                   mode=0o600)

sw.export("password", password.result)
sw.export("site_path", site.path)
"""

SITE = "dev::proj::local:File::site"
CREDS = "dev::proj::local:File::creds"
PASSWORD = "dev::proj::random:Password::db-password"


@pytest.fixture
def basic(project) -> CliProject:
    return project(BASIC, {"greeting": "hello"})


@pytest.fixture
def applied(basic: CliProject) -> CliProject:
    basic.ok("up", "--yes")
    return basic


def summary(out: str) -> str:
    """The plan's last line ("Resources: ..." or "No changes. ...")."""
    return out.strip().splitlines()[-1]


def changed_lines(out: str) -> list[str]:
    """Resource lines of a plan tree marked +, ~, +- or -."""
    return [line.strip() for line in out.splitlines() if re.match(r"^\s+(\+-|\+|~|-)\s+\S+:\S+ ", line)]


def recorded(proj: CliProject) -> tuple[str, str]:
    """What the state records, as `state ls` (with the serial) and `history` print it.

    A refused `up` takes and releases the stack's lock, which rewrites bytes of the
    state file without changing any of this.
    """
    return proj.ok("state", "ls"), proj.ok("history")


def secret_value(proj: CliProject) -> str:
    out = proj.ok("outputs", "--show-secrets", "--json")
    value = json.loads(out)["password"]
    assert isinstance(value, str) and len(value) == 20
    return value


# --- new, preview, up ------------------------------------------------------------------


def test_new_scaffolds_a_runnable_project(tmp_path: Path) -> None:
    code, out, err = run_cli(tmp_path, "new", "demo")
    assert code == 0, err
    root = tmp_path / "demo"
    for name in ("stackwright.yaml", "__main__.py", ".gitignore", "stacks/dev.yaml",
                 ".stackwright/state.db"):
        assert (root / name).is_file(), name
    assert (root / ".stackwright" / "current-stack").read_text().strip() == "dev"
    assert "name: demo" in (root / "stackwright.yaml").read_text()
    # what the program digest leaves out: the top-level out/ only (lib/out/ is code)
    assert (root / ".gitignore").read_text().splitlines() == [".stackwright/", "/out/", "__pycache__/"]

    code, out, err = run_cli(root, "preview")
    assert code == 0, err
    assert summary(out) == "Resources: 4 to create, 0 unchanged"
    code, out, err = run_cli(root, "up", "--yes")
    assert code == 0, err
    assert "Update succeeded" in out
    assert (root / "out" / "dev" / "index.html").read_text().startswith("<h1>hello from ")
    code, out, err = run_cli(root, "preview")
    assert code == 0 and summary(out).startswith("No changes."), out + err

    code, out, err = run_cli(tmp_path, "new", "demo")
    assert code == 1 and "already holds a Stackwright project" in err


def test_new_refuses_a_bad_project_name_and_writes_nothing(tmp_path: Path) -> None:
    """The project's name goes into every URN: `new` holds it to the stack names' rule,
    whether it comes from the folder or --name, before it writes anything."""
    for args, error in ((("new", "Bad Name"), "invalid project name 'Bad Name'"),
                        (("new", "dir", "--name", "bad name!"), "invalid project name 'bad name!'"),
                        (("new", "dir", "--stack", "Dev"), "invalid stack name 'Dev'")):
        code, out, err = run_cli(tmp_path, *args)
        assert code == 1 and error in err, out + err
        assert "project" not in error or "--name NAME" in err, err
        assert list(tmp_path.iterdir()) == [], f"{args} wrote {list(tmp_path.iterdir())}"
    code, out, err = run_cli(tmp_path, "new", "Bad Name", "--name", "good-name")
    assert code == 0, err
    assert "name: good-name" in (tmp_path / "Bad Name" / "stackwright.yaml").read_text()


def test_preview_never_changes_state_or_files(basic: CliProject) -> None:
    before = basic.tree()
    for args in (("preview",), ("preview", "--diff"), ("preview", "--json"), ("preview", "--show-same")):
        basic.ok(*args)
    assert basic.tree() == before
    assert not basic.file("out").exists()

    basic.ok("up", "--yes")
    basic.write_config({"greeting": "bye"})
    before = basic.tree()
    out = basic.ok("preview", "--diff")
    assert summary(out) == "Resources: 1 to update, 2 unchanged"
    basic.ok("preview", "--json")
    assert basic.tree() == before
    assert basic.file("out/dev/index.html").read_text() == "<h1>hello</h1>"


def test_preview_diff_shows_properties_and_unknowns(basic: CliProject) -> None:
    out = basic.ok("preview", "--diff")
    lines = [line.strip() for line in out.splitlines()]
    assert "+  local:File site  create" in lines
    assert 'path: "out/dev/index.html"' in lines
    assert 'content: "<h1>hello</h1>"' in lines
    # creds' content embeds the password, which exists only after apply.
    creds_at = lines.index("+  local:File creds  create")
    assert "content: (known after apply)" in lines[creds_at:creds_at + 4]
    assert "mode: 384" in lines[creds_at:creds_at + 4]
    assert summary(out) == "Resources: 3 to create, 0 unchanged"


def test_preview_json_is_the_documented_shape_and_masks_secrets(applied: CliProject) -> None:
    pw = secret_value(applied)
    applied.write_config({"greeting": "bye"})
    text = applied.ok("preview", "--json")
    plan = json.loads(text)
    assert {"schema", "stack", "project", "summary", "steps"} <= plan.keys()
    assert (plan["stack"], plan["project"]) == ("dev", "proj")
    assert plan["summary"] == {"update": 1, "same": 2}
    for step in plan["steps"]:
        assert {"urn", "type", "op"} <= step.keys()
    ops = {s["urn"]: s["op"] for s in plan["steps"]}
    assert ops == {PASSWORD: "same", SITE: "update", CREDS: "same"}
    site = next(s for s in plan["steps"] if s["urn"] == SITE)
    assert site["diffs"] == [{"path": "content", "kind": "update",
                              "old": "<h1>hello</h1>", "new": "<h1>bye</h1>"}]
    assert plan["outputs"]["password"] == "[secret]"
    assert pw not in text


def test_second_preview_after_up_says_no_changes(applied: CliProject) -> None:
    out = applied.ok("preview")
    assert summary(out) == "No changes. 3 resources unchanged."
    out = applied.ok("up", "--yes")
    assert "No changes." in out
    assert len(applied.ok("history").strip().splitlines()) == 2  # header + the first up


def test_config_edit_previews_exactly_that_change(applied: CliProject) -> None:
    applied.write_config({"greeting": "bye"})
    out = applied.ok("preview", "--diff")
    assert changed_lines(out) == ["~  local:File site  update"]
    assert '~ content: "<h1>hello</h1>" => "<h1>bye</h1>"' in out
    assert summary(out) == "Resources: 1 to update, 2 unchanged"
    assert "path" not in out.split("update", 1)[1].split("Resources:")[0]

    applied.ok("up", "--yes")
    assert applied.file("out/dev/index.html").read_text() == "<h1>bye</h1>"
    assert summary(applied.ok("preview")).startswith("No changes.")


def test_dependents_of_an_updated_file_update_in_the_same_up(project) -> None:
    """b's content is computed from a's sha256, which changes when a's content does."""
    proj = project("""\
        a = local.File("a", path="a.txt", content=sw.Config().require_str("text"))
        b = local.File("b", path="b.txt", content=sw.fmt("a is {}", a.sha256))
        """, {"text": "one"})
    proj.ok("up", "--yes")
    proj.write_config({"text": "two"})
    out = proj.ok("preview", "--diff")
    assert changed_lines(out) == ["~  local:File a  update", "~  local:File b  update"]
    assert "=> (known after apply)" in out
    proj.ok("up", "--yes")
    assert proj.file("b.txt").read_text() == "a is " + hashlib.sha256(b"two").hexdigest()
    assert summary(proj.ok("preview")).startswith("No changes.")


def test_replace_forcing_property_shows_replace(applied: CliProject) -> None:
    applied.write_program(BASIC.replace('"out/{}/index.html"', '"out/{}/home.html"'))
    out = applied.ok("preview")
    assert changed_lines(out) == ["+- local:File site  replace"]
    assert '~ path: "out/dev/index.html" => "out/dev/home.html"  [forces replacement]' in out
    assert summary(out) == "Resources: 1 to replace, 2 unchanged"
    applied.ok("up", "--yes")
    assert not applied.file("out/dev/index.html").exists()
    assert applied.file("out/dev/home.html").read_text() == "<h1>hello</h1>"


def test_up_target_changes_only_that_resource(project) -> None:
    proj = project("""\
        text = sw.Config().require_str("text")
        a = local.File("a", path="a.txt", content=text)
        b = local.File("b", path="b.txt", content=text)
        """, {"text": "one"})
    proj.ok("up", "--yes")
    proj.write_config({"text": "two"})
    out = proj.ok("up", "--yes", "--target", proj.urn("local:File", "b"))
    assert "1 update" in out
    assert proj.file("a.txt").read_text() == "one"
    assert proj.file("b.txt").read_text() == "two"
    assert changed_lines(proj.ok("preview")) == ["~  local:File a  update"]
    err = proj.fails("up", "--yes", "--target", proj.urn("local:File", "nope"))
    assert "--target names no resource" in err


def test_targets_by_short_name_for_up_and_destroy(project) -> None:
    proj = project("""\
        text = sw.Config().require_str("text")
        a = local.File("a", path="a.txt", content=text)
        b = local.File("b", path="b.txt", content=a.path)
        c = local.File("c", path="c.txt", content=text)
        """, {"text": "one"})
    proj.ok("up", "--yes")
    proj.write_config({"text": "two"})
    assert "1 update" in proj.ok("up", "--yes", "--target", "c")
    assert proj.file("c.txt").read_text() == "two" and proj.file("a.txt").read_text() == "one"

    out = proj.ok("destroy", "--yes", "--target", "a")  # b depends on a: it goes too
    assert "2 delete" in out
    assert not proj.file("a.txt").exists() and not proj.file("b.txt").exists()
    assert proj.file("c.txt").exists()
    assert "--target names no resource" in proj.fails("destroy", "--yes", "--target", "nope")


def test_up_and_destroy_refuse_without_yes_when_nobody_can_answer(applied: CliProject) -> None:
    applied.write_config({"greeting": "bye"})
    before = recorded(applied)
    assert "pass --yes" in applied.fails("up")
    assert "pass --yes" in applied.fails("destroy")
    assert recorded(applied) == before
    assert applied.file("out/dev/index.html").read_text() == "<h1>hello</h1>"


def test_destroy_removes_everything(applied: CliProject) -> None:
    out = applied.ok("destroy", "--yes")
    assert "Destroy succeeded" in out and "3 delete" in out
    assert not applied.file("out/dev/index.html").exists()
    assert not applied.file("out/creds.env").exists()
    assert summary(applied.ok("state", "ls")).startswith("0 resources")
    assert "destroy" in applied.ok("history").splitlines()[-1]
    assert summary(applied.ok("preview")) == "Resources: 3 to create, 0 unchanged"


# --- history, outputs, secrets ---------------------------------------------------------


def test_history_lists_checkpoints_and_shows_diffs(applied: CliProject) -> None:
    applied.write_config({"greeting": "bye"})
    applied.ok("up", "--yes")
    lines = applied.ok("history").strip().splitlines()
    assert lines[0].split()[:3] == ["#", "WHEN", "KIND"]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == ["1", "2"]
    for row in rows:
        assert row[3:5] == ["up", "tester"]
        assert "succeeded" in row
    assert lines[1].endswith("create 3")
    assert lines[2].endswith("update 1")

    shown = applied.ok("history", "show", "2")
    assert f"update           {SITE}" in shown
    assert 'content: "<h1>hello</h1>" => "<h1>bye</h1>"' in shown
    assert CREDS not in shown
    assert "No checkpoints yet." not in shown
    err = applied.fails("history", "show", "9")
    assert "9" in err


def test_secrets_are_masked_everywhere_but_show_secrets(project) -> None:
    proj = project(BASIC, {"greeting": "hello"})
    up_out = proj.ok("up", "--yes", "--diff")
    out = proj.ok("outputs")
    assert "password: [secret]" in out.splitlines()
    assert "site_path: out/dev/index.html" in out.splitlines()
    assert json.loads(proj.ok("outputs", "--json"))["password"] == "[secret]"
    pw = secret_value(proj)
    assert f"password: {pw}" in proj.ok("outputs", "--show-secrets")

    # A change to the secret-bearing file: its diff must stay masked too.
    proj.write_program(BASIC.replace('"PASSWORD={}"', '"DB_PASSWORD={}"'))
    shown = [
        up_out,
        proj.ok("preview"), proj.ok("preview", "--diff"), proj.ok("preview", "--json"),
        proj.ok("preview", "--show-same", "--diff"),
        proj.ok("up", "--yes", "--diff"),
        proj.ok("history"), proj.ok("history", "show", "1"), proj.ok("history", "show", "2"),
        proj.ok("state", "show", CREDS), proj.ok("state", "show", PASSWORD),
        proj.ok("state", "ls"), proj.ok("outputs"),
    ]
    assert proj.file("out/creds.env").read_text() == f"DB_PASSWORD={pw}"
    # Edited outside: what refresh reads back is as secret as what was written.
    proj.file("out/creds.env").write_text(f"DB_PASSWORD={pw}\nEXTRA=1\n")
    shown += [proj.ok("refresh"), proj.ok("refresh", "--yes"), proj.ok("history", "show", "3"),
              proj.ok("preview", "--diff")]
    assert "[secret]" in shown[2] and "[secret]" in shown[9] and "[secret]" in shown[-1]
    for text in shown:
        assert pw not in text


SECRET_CONFIG = "hunter2-PLAINTEXT-XYZ"
MADE_OF_SECRET = """
    dbpass = sw.Config().require_secret("dbpass")
    echo = local.Command("echo", create=sw.fmt("echo out-{}", dbpass))
    lowered = local.Command("lowered", create=dbpass.apply(lambda p: "echo " + p.lower()))
    sw.export("echoed", echo.stdout)
    sw.export("lowered", lowered.stdout)
"""


def _artifacts(proj: CliProject) -> str:
    """Every file of the project but the program, as text (the state's bytes too)."""
    return "\n".join(path.read_bytes().decode("latin-1") for path in sorted(proj.root.rglob("*"))
                     if path.is_file() and path != proj.program)


def test_what_a_provider_prints_of_a_secret_config_value_stays_secret_everywhere(project) -> None:
    """A secret reaching a command only through ``sw.fmt`` or ``.apply``: what the
    command prints, whole or changed, is secret in state, outputs, history, plans and
    after ``refresh --yes``; ``Output.all`` keeps the plain element plain."""
    proj = project(MADE_OF_SECRET + '    sw.export("pair", sw.Output.all(dbpass, "e"))\n')
    proj.ok("config", "set", "--secret", "dbpass", SECRET_CONFIG)
    shown = [proj.ok("up", "--yes"), proj.ok("outputs"), proj.ok("outputs", "--json"),
             proj.ok("history", "show", "1", "--json"),
             proj.ok("state", "show", proj.urn("local:Command", "echo")),
             proj.ok("refresh", "--yes"), proj.ok("state", "show", proj.urn("local:Command", "lowered")),
             proj.ok("preview", "--refresh", "--diff"), proj.ok("plan", "--out", "again.plan")]
    assert 'pair: ["[secret]", "e"]' in shown[1]
    for text in [*shown, _artifacts(proj)]:
        assert SECRET_CONFIG.lower() not in text.lower()


def test_a_saved_plan_applied_keeps_what_its_secrets_were_made_of_secret(project) -> None:
    proj = project(MADE_OF_SECRET)
    proj.ok("config", "set", "--secret", "dbpass", SECRET_CONFIG)
    proj.ok("plan", "--out", "saved.plan")
    shown = [proj.ok("apply", "saved.plan", "--yes"), proj.ok("outputs")]
    assert "echoed: [secret]" in shown[1] and "lowered: [secret]" in shown[1]
    for text in [*shown, _artifacts(proj)]:
        assert SECRET_CONFIG.lower() not in text.lower()


def test_a_failing_callback_given_a_secret_records_nothing_made_of_it(project) -> None:
    proj = project("""
        dbpass = sw.Config().require_secret("dbpass")
        def check(p):
            raise ValueError(f"bad password {p.lower()}")
        local.File("h", path="out/h.txt", content=dbpass.apply(check))
    """)
    proj.ok("config", "set", "--secret", "dbpass", SECRET_CONFIG)
    err = proj.fails("up", "--yes")
    assert "raised ValueError (its message is not shown" in err
    for text in [err, _artifacts(proj)]:
        assert SECRET_CONFIG.lower() not in text.lower()


def test_a_lookup_of_what_a_secret_was_written_into_records_it_secret(project) -> None:
    """A data lookup reading a file another resource wrote a password into: the file's
    content is recorded and shown secret."""
    proj = project("""
        password = random.Password("pw", length=20)
        creds = local.File("creds", path="out/creds.env", content=sw.fmt("PASSWORD={}", password.result))
        again = local.File.get("again", "out/creds.env", opts=sw.ResourceOptions(depends_on=[creds]))
        sw.export("password", password.result)
        sw.export("read_back", again.content)
    """)
    shown = [proj.ok("up", "--yes"), proj.ok("outputs"), proj.ok("state", "show", proj.urn("local:File", "again"))]
    pw = secret_value(proj)
    assert "read_back: [secret]" in shown[1]
    for text in [*shown, _artifacts(proj).replace(proj.file("out/creds.env").read_text(), "")]:
        assert pw not in text


# --- refresh, import, rollback ---------------------------------------------------------


def test_refresh_reports_drift_records_only_with_yes_and_up_restores(applied: CliProject) -> None:
    applied.file("out/dev/index.html").write_text("edited by hand")
    applied.file("out/creds.env").unlink()
    before = applied.db_bytes()

    out = applied.ok("refresh")
    lines = [line.strip() for line in out.splitlines()]
    assert "~ local:File site  changed outside Stackwright" in lines
    assert '~ content: "<h1>hello</h1>" => "edited by hand"' in lines
    assert "- local:File creds  deleted outside Stackwright" in lines
    assert "Checked 3 resources: 2 drifted." in lines
    assert "refresh --yes" in out
    assert applied.db_bytes() == before
    out = applied.ok("preview")  # the state is untouched; the plan reads the drifted objects
    assert changed_lines(out) == ["~  local:File site  update", "+  local:File creds  create"]
    assert out.count("found by the last `refresh`") == 2
    assert applied.db_bytes() == before

    out = applied.ok("refresh", "--yes")
    assert "Recorded in checkpoint 2." in out
    assert applied.ok("history").strip().splitlines()[-1].split()[3] == "refresh"
    shown = applied.ok("history", "show", "2")
    assert f"refresh-changed  {SITE}" in shown
    assert 'content: "<h1>hello</h1>" => "edited by hand"' in shown
    assert f"refresh-deleted  {CREDS}" in shown
    out = applied.ok("preview")
    assert changed_lines(out) == ["~  local:File site  update", "+  local:File creds  create"]
    applied.ok("up", "--yes")
    assert applied.file("out/dev/index.html").read_text() == "<h1>hello</h1>"
    assert applied.file("out/creds.env").read_text().startswith("PASSWORD=")
    assert "no drift" in applied.ok("refresh")
    assert summary(applied.ok("preview")).startswith("No changes.")


def test_import_adopts_a_file_and_prints_code_that_matches(applied: CliProject) -> None:
    applied.file("legacy.conf").write_text("port = 8080\n")
    code, out, err = applied.run("import", "--yes", "local:File", "legacy", "legacy.conf")
    assert code == 0, err
    urn = applied.urn("local:File", "legacy")
    assert f"Imported {urn}" in err
    assert "local.File(" in out and "'legacy'" in out and "port = 8080" in out
    compile(out, "<imported>", "exec")
    assert urn in applied.ok("state", "ls")
    assert "external" in applied.ok("state", "show", urn)
    assert applied.ok("history").strip().splitlines()[-1].split()[3] == "import"

    # Not yet declared: protected, so the plan that would delete it is refused.
    err = applied.fails("preview")
    assert "protected" in err and "imported" in err and "legacy" in err
    assert "opts=sw.ResourceOptions(protect=True)" in out
    applied.append_program(out)
    assert summary(applied.ok("preview")) == "No changes. 4 resources unchanged."
    assert applied.file("legacy.conf").read_text() == "port = 8080\n"

    err = applied.fails("import", "--yes", "local:File", "legacy", "legacy.conf")
    assert "already managed" in err
    err = applied.fails("import", "--yes", "local:File", "ghost", "no-such-file")
    assert "no local:File with id 'no-such-file'" in err


def test_import_refuses_an_object_the_stack_manages_under_another_name(applied: CliProject) -> None:
    site = applied.urn("local:File", "site")
    rows = [line.split() for line in applied.ok("state", "ls").splitlines()]
    site_id = next(row[1] for row in rows if row and row[0] == site)
    before = recorded(applied)
    err = applied.fails("import", "--yes", "local:File", "copy", site_id)
    assert f"local:File {site_id} is already managed by this stack, as {site}" in err, err
    assert f"aliases=[{site!r}]" in err, err
    assert recorded(applied) == before


def test_import_random_id_reads_its_value_from_the_id_and_prints_code_that_matches(applied: CliProject) -> None:
    code, out, err = applied.run("import", "--yes", "random:Id", "legacy-id", "1a2b3c4d")
    assert code == 0, err
    assert "byte_length=4," in out
    applied.append_program(out)
    assert summary(applied.ok("preview")) == "No changes. 4 resources unchanged."
    applied.append_program("sw.export('legacy', legacy_id.hex)\n")
    applied.ok("up", "--yes")
    assert json.loads(applied.ok("outputs", "--json"))["legacy"] == "1a2b3c4d"


@pytest.mark.parametrize("args, why", [
    (("random:Password", "pw", "tok-1"), "random:Password cannot be imported: a generated password lives only"),
    (("local:Command", "cmd", "tok-1"), "local:Command cannot be imported: what a command made cannot be looked at"),
    (("random:Id", "suffix", "not-hex"), "a random:Id is imported by its hex value, and 'not-hex' is not one"),
])
def test_import_refuses_what_it_cannot_read_back(applied: CliProject, args: tuple[str, ...], why: str) -> None:
    before = recorded(applied)
    err = applied.fails("import", "--yes", *args)
    assert why in err.splitlines()[0]
    assert recorded(applied) == before


def test_rollback_returns_files_to_a_checkpoint(applied: CliProject) -> None:
    for greeting in ("two", "three"):
        applied.write_config({"greeting": greeting})
        applied.ok("up", "--yes")
    assert applied.file("out/dev/index.html").read_text() == "<h1>three</h1>"
    out = applied.ok("rollback", "1", "--yes")
    assert '~ content: "<h1>three</h1>" => "<h1>hello</h1>"' in out
    assert "Rollback to checkpoint 1 succeeded" in out
    assert applied.file("out/dev/index.html").read_text() == "<h1>hello</h1>"
    assert applied.ok("history").strip().splitlines()[-1].split()[3] == "rollback"
    # The program still says "three": the next preview shows the way forward again.
    assert changed_lines(applied.ok("preview")) == ["~  local:File site  update"]
    applied.ok("rollback", "2", "--yes")
    assert applied.file("out/dev/index.html").read_text() == "<h1>two</h1>"


def test_rollback_json_says_its_kind_is_rollback(applied: CliProject) -> None:
    applied.write_config({"greeting": "bonjour"})
    applied.ok("up", "--yes")
    document = json.loads(applied.ok("rollback", "1", "--yes", "--json"))
    assert (document["kind"], document["result"], document["done"]) == ("rollback", "succeeded", {"update": 1})
    assert document["plan"]["kind"] == "rollback"
    assert [cp["kind"] for cp in json.loads(applied.ok("history", "--json"))["checkpoints"]][-1] == "rollback"


# --- state and stack commands ----------------------------------------------------------


def test_state_ls_show_rm(applied: CliProject) -> None:
    lines = applied.ok("state", "ls").strip().splitlines()
    assert {line.split()[0] for line in lines[:-1]} == {SITE, CREDS, PASSWORD}
    assert re.fullmatch(r"3 resources, serial \d+", lines[-1])
    site_line = next(line for line in lines if line.startswith(SITE))
    assert site_line.split()[1] == str(applied.file("out/dev/index.html").resolve())

    shown = applied.ok("state", "show", SITE)
    assert "type: local:File" in shown
    assert 'content: "<h1>hello</h1>"' in shown
    assert "sha256:" in shown
    assert f"depends on: {PASSWORD}" in applied.ok("state", "show", CREDS)
    assert "no recorded resource" in applied.fails("state", "show", "dev::proj::local:File::nope")

    before = recorded(applied)
    assert "pass --yes" in applied.fails("state", "rm", SITE)
    assert "depend on it" in applied.fails("state", "rm", "--yes", PASSWORD)
    assert recorded(applied) == before

    out = applied.ok("state", "rm", "--yes", SITE)
    assert f"Forgot {SITE}" in out
    assert applied.file("out/dev/index.html").exists()  # forgotten, not deleted
    assert SITE not in applied.ok("state", "ls")
    assert applied.ok("history").strip().splitlines()[-1].split()[3] == "state-rm"
    assert changed_lines(applied.ok("preview")) == ["+  local:File site  create"]


def test_stacks_init_ls_select_rm_with_a_per_developer_stack(applied: CliProject) -> None:
    lines = applied.ok("stack", "ls").strip().splitlines()
    assert lines[1].split()[:2] == ["dev*", "3"]

    out = applied.ok("stack", "init", "dev-alex")
    assert "stacks/dev-alex.yaml" in out
    applied.write_config({"greeting": "hi from alex"}, stack="dev-alex")
    out = applied.ok("up", "--yes")
    assert "3 create" in out
    assert applied.file("out/dev-alex/index.html").read_text() == "<h1>hi from alex</h1>"
    assert applied.file("out/dev/index.html").read_text() == "<h1>hello</h1>"
    assert "dev-alex::proj::local:File::site" in applied.ok("state", "ls")

    rows = {line.split()[0]: line.split()[1] for line in applied.ok("stack", "ls").splitlines()[1:]}
    assert rows == {"dev": "3", "dev-alex*": "3"}
    assert summary(applied.ok("preview", "--stack", "dev")).startswith("No changes.")
    assert "hi from alex" not in applied.ok("preview", "--stack", "dev", "--diff")

    assert "Selected stack 'dev'" in applied.ok("stack", "select", "dev")
    assert "dev*" in applied.ok("stack", "ls")
    assert "no stack named 'nope'" in applied.fails("stack", "select", "nope")
    assert "invalid stack name" in applied.fails("stack", "init", "Dev Alex")
    assert "already exists" in applied.fails("stack", "init", "dev-alex")

    assert "still has 3 resources" in applied.fails("stack", "rm", "--yes", "dev-alex")
    applied.ok("destroy", "--yes", "--stack", "dev-alex")
    assert not applied.file("out/dev-alex/index.html").exists()
    applied.ok("stack", "rm", "-y", "dev-alex")
    assert [line.split()[0] for line in applied.ok("stack", "ls").splitlines()[1:]] == ["dev*"]
    assert applied.file("out/dev/index.html").exists()


def test_commands_from_a_subfolder_act_on_the_project(applied: CliProject) -> None:
    """Relative paths in the program mean the project's root wherever the CLI starts."""
    sub = applied.file("docs/notes")
    sub.mkdir(parents=True)
    applied.write_config({"greeting": "bye"})
    code, out, err = run_cli(sub, "refresh")
    assert code == 0 and "no drift" in out, out + err
    code, out, err = run_cli(sub, "up", "--yes")
    assert code == 0 and "1 update" in out, out + err
    assert applied.file("out/dev/index.html").read_text() == "<h1>bye</h1>"
    assert not (sub / "out").exists()
    assert summary(run_cli(sub, "preview")[1]).startswith("No changes.")


def test_stack_env_var_selects_the_stack(applied: CliProject) -> None:
    applied.ok("stack", "init", "dev-alex")
    applied.ok("stack", "select", "dev")
    code, out, err = run_cli(applied.root, "preview", env=cli_env(STACKWRIGHT_STACK="dev-alex"))
    assert code == 0, err
    assert out.startswith("Stack dev-alex (proj)")


# --- resource options and components ---------------------------------------------------


PROTECTED = """\
keep = local.File("keep", path="keep.txt", content="precious", opts=sw.ResourceOptions(protect=True))
other = local.File("other", path="other.txt", content="x")
"""


def test_protect_refuses_delete_and_replace_and_changes_nothing(project) -> None:
    proj = project(PROTECTED)
    proj.ok("up", "--yes")
    before = recorded(proj)
    keep_urn = proj.urn("local:File", "keep")

    proj.write_program(PROTECTED.replace('"keep.txt"', '"moved.txt"').replace('"x"', '"y"'))
    for args in (("preview",), ("up", "--yes")):
        err = proj.fails(*args)
        assert f"{proj.program}:{proj.line_of('keep =')}: {keep_urn}: resource is protected; " \
               "the plan would replace it (because path changed)" in err
        assert "hint: set protect=False" in err
        assert len(err.strip().splitlines()) == 2

    proj.write_program(PROTECTED.split("\n", 1)[1])  # keep is no longer declared
    assert "the plan would delete it" in proj.fails("up", "--yes")
    assert "the plan would delete it" in proj.fails("destroy", "--yes")

    assert proj.file("keep.txt").read_text() == "precious"
    assert proj.file("other.txt").read_text() == "x"
    assert not proj.file("moved.txt").exists()
    assert recorded(proj) == before


def test_alias_rename_is_not_a_replacement(project) -> None:
    proj = project('local.File("old", path="f.txt", content="x")\n')
    proj.ok("up", "--yes")
    inode = proj.file("f.txt").stat().st_ino

    proj.write_program('local.File("new", path="f.txt", content="x")\n')
    without = changed_lines(proj.ok("preview"))
    assert sorted(without) == ["+  local:File new  create", "-  local:File old  delete"]

    proj.write_program('local.File("new", path="f.txt", content="x",\n'
                       '           opts=sw.ResourceOptions(aliases=[sw.Alias(name="old")]))\n')
    out = proj.ok("preview", "--diff")
    assert "local:File new (was old)  update options" in out and "options: aliases [] => [old]" in out
    assert changed_lines(out) == ["~  local:File new (was old)  update options"]
    assert "create" not in out and "delete" not in out and "replace" not in out
    proj.ok("up", "--yes")
    urns = [line.split()[0] for line in proj.ok("state", "ls").splitlines()[:-1]]
    assert urns == [proj.urn("local:File", "new")]
    assert proj.file("f.txt").stat().st_ino == inode
    out = proj.ok("preview")
    assert "was old" not in out and summary(out) == "No changes. 1 resources unchanged."


def test_alias_rename_is_recorded_in_history(project) -> None:
    proj = project('local.File("old", path="f.txt", content="x")\n')
    proj.ok("up", "--yes")
    proj.write_program('local.File("new", path="f.txt", content="x",\n'
                       '           opts=sw.ResourceOptions(aliases=[sw.Alias(name="old")]))\n')
    proj.ok("up", "--yes")
    assert len(proj.ok("history").strip().splitlines()) == 3


def test_ignore_changes_keeps_the_recorded_value(project) -> None:
    program = ('local.File("f", path="f.txt", content="{content}", mode={mode},\n'
               '           opts=sw.ResourceOptions(ignore_changes=["content"]))\n')
    proj = project(program.format(content="v1", mode="0o644"))
    proj.ok("up", "--yes")
    proj.write_program(program.format(content="v2", mode="0o644"))
    assert summary(proj.ok("preview")) == "No changes. 1 resources unchanged."
    proj.ok("up", "--yes")
    assert proj.file("f.txt").read_text() == "v1"

    proj.write_program(program.format(content="v2", mode="0o600"))
    out = proj.ok("preview", "--diff")
    assert "~ mode: 420 => 384" in out and "content:" not in out.replace("content: kept at", "")
    assert 'content: kept at "v1", not set to the declared "v2": ignore_changes lists it' in out
    proj.ok("up", "--yes")
    assert proj.file("f.txt").read_text() == "v1"
    assert proj.file("f.txt").stat().st_mode & 0o777 == 0o600


def test_retain_on_delete_keeps_the_file_on_destroy(project) -> None:
    proj = project("""\
        local.File("kept", path="kept.txt", content="k", opts=sw.ResourceOptions(retain_on_delete=True))
        local.File("gone", path="gone.txt", content="g")
        """)
    proj.ok("up", "--yes")
    assert "flags: retain_on_delete" in proj.ok("state", "show", proj.urn("local:File", "kept"))
    proj.ok("destroy", "--yes")
    assert proj.file("kept.txt").read_text() == "k"
    assert not proj.file("gone.txt").exists()
    assert summary(proj.ok("state", "ls")).startswith("0 resources")


def test_destroy_of_a_protected_resource_says_how_to_lift_protection(project) -> None:
    """--allow-destroy is about a policy: it does not lift protection, and its help says so."""
    proj = project("""\
        local.File("kept", path="kept.txt", content="k", opts=sw.ResourceOptions(protect=True))
        local.File("gone", path="gone.txt", content="g")
        """)
    proj.ok("up", "--yes")
    err = proj.fails("destroy", "--yes", "--allow-destroy")
    assert "resource is protected; the plan would delete it" in err and "undo the change" not in err
    assert ("hint: `destroy` never deletes a protected resource: remove protect=True from the program and run "
            "`stackwright up` first") in err and "`stackwright destroy --target NAME`" in err
    for command in ("up", "destroy", "rollback"):
        helped = " ".join(proj.ok(command, "--help").split())
        assert "A protected resource stays refused: remove protect=True in the program" in helped
        assert "and protected" not in helped
    proj.ok("destroy", "--yes", "--target", "gone")
    assert proj.file("kept.txt").exists() and not proj.file("gone.txt").exists()


def test_every_view_of_a_retained_delete_says_the_object_is_kept(project) -> None:
    proj = project("""\
        local.File("kept", path="kept.txt", content="k", opts=sw.ResourceOptions(retain_on_delete=True))
        local.File("gone", path="gone.txt", content="g")
        """)
    proj.ok("up", "--yes")
    assert '"retain"' not in proj.ok("preview", "--format", "json")  # only a delete says it
    proj.write_program("")
    text = proj.ok("preview")
    assert "-  local:File kept  delete (retained: left in the cloud)\n" in text
    assert "-  local:File gone  delete\n" in text and "Resources: 2 to delete (1 retained)" in text
    steps = {s["urn"].rsplit("::", 1)[1]: s for s in json.loads(proj.ok("preview", "--format", "json"))["steps"]}
    assert (steps["kept"]["op"], steps["kept"].get("retain")) == ("delete", True) and "retain" not in steps["gone"]

    code, out, err = proj.run("up", "--yes", "--json")
    assert code == 0 and json.loads(out)["done"] == {"delete": 1, "delete (retained)": 1}
    assert "  delete (retained) local:File kept  ok" in err
    assert json.loads(proj.ok("history", "--json"))["checkpoints"][-1]["counts"] == {
        "delete": 1, "delete (retained)": 1}
    shown = proj.ok("history", "show", "2")
    assert f"  delete (retained) {proj.urn('local:File', 'kept')}" in shown
    assert proj.file("kept.txt").read_text() == "k" and not proj.file("gone.txt").exists()


COMPONENT = """\
class Site(sw.Component):
    def __init__(self, name, text):
        super().__init__(name)
        self.index = local.File("index", path=f"out/{name}/index.html", content=text)
        self.about = local.File("about", path=f"out/{name}/about.html", content="about")


web = Site("web", "hello")
top = local.File("top", path="out/top.txt", content="top")
"""


def test_components_group_resources_in_urns_and_the_preview_tree(project) -> None:
    proj = project(COMPONENT)
    out = proj.ok("preview")
    lines = out.splitlines()
    header = lines.index("  component:__main__:Site web")
    assert lines[header + 1:header + 3] == ["    +  local:File index  create",
                                            "    +  local:File about  create"]
    assert "  +  local:File top  create" in lines

    plan = json.loads(proj.ok("preview", "--json"))
    parent = "dev::proj::component:__main__:Site::web"
    by_urn = {s["urn"]: s for s in plan["steps"]}
    assert set(by_urn) == {"dev::proj::local:File::web$index", "dev::proj::local:File::web$about",
                           "dev::proj::local:File::top"}
    assert by_urn["dev::proj::local:File::web$index"]["parent"] == parent
    assert "parent" not in by_urn["dev::proj::local:File::top"]

    proj.ok("up", "--yes")
    assert proj.file("out/web/index.html").read_text() == "hello"
    assert "dev::proj::local:File::web$about" in proj.ok("state", "ls")
    assert f"parent: {parent}" in proj.ok("state", "show", "dev::proj::local:File::web$index")

    proj.write_program(COMPONENT.replace('"hello"', '"bye"'))
    lines = proj.ok("preview").splitlines()
    header = lines.index("  component:__main__:Site web")
    assert lines[header + 1] == "    ~  local:File index  update"
    assert changed_lines("\n".join(lines)) == ["~  local:File index  update"]


def test_state_db_is_plain_sqlite_with_the_stack(applied: CliProject) -> None:
    """Guards the fixture's assumptions (path and table names) used by test_errors."""
    with sqlite3.connect(applied.db) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
        assert conn.execute("SELECT name FROM stacks").fetchall() == [("dev",)]
