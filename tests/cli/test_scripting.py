"""What a script (or a person at a terminal) notices: exit codes, one parseable JSON
document on stdout, colour only where asked, a declined prompt that changes nothing,
drift that `up` puts back or says why not, and `import` that asks and protects."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import CliProject, cli_env
from stackwright.operations.drift_note import STEP_NOTE

ESC = "\x1b["

PROGRAM = """\
    password = random.Password("pw", length=24)
    site = local.File("site", path="out/site.txt", content="hello")
    kept = local.File("kept", path="out/kept.txt", content="declared",
                      opts=sw.ResourceOptions(ignore_changes=["content"]))
    creds = local.File("creds", path="out/creds.env", mode=0o600,
                       content=sw.fmt("PASSWORD={}\\n", password.result))
    sw.export("password", password.result)
    """


def document(out: str) -> Any:
    """stdout must be exactly one JSON document."""
    return json.loads(out)


def run_json(proj: CliProject, *args: str) -> tuple[int, Any, str]:
    code, out, err = proj.run(*args)
    assert "Traceback" not in err, err
    return code, document(out), err


def on_terminal(proj: CliProject, *args: str, typed: str = "", **env: str) -> tuple[int, str]:
    """Run the CLI with stdin, stdout and stderr on a pseudo-terminal (as a person at a
    terminal would), ``typed`` waiting as their answers; the exit code and everything
    the terminal showed."""
    main, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "stackwright.cli.main", *args], cwd=proj.root,
                               env=cli_env(**env), stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    if typed:
        os.write(main, typed.encode())
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other end closed: the process exited
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    return process.wait(timeout=60), shown.decode(errors="replace")


def secret_of(proj: CliProject) -> str:
    value = document(proj.ok("outputs", "--json", "--show-secrets"))["password"]
    assert isinstance(value, str) and len(value) == 24
    return value


# --- exit codes and JSON ------------------------------------------------------------------


def test_preview_exit_code_says_whether_there_are_changes(project) -> None:
    proj = project(PROGRAM)
    code, out, _ = proj.run("preview", "--exit-code")
    assert code == 2 and "to create" in out
    code, plan, _ = run_json(proj, "preview", "--exit-code", "--json")
    assert code == 2 and plan["summary"] == {"create": 4}

    code, applied, err = run_json(proj, "up", "--yes", "--json")
    assert code == 0, err
    assert applied["result"] == "succeeded" and applied["kind"] == "up"
    assert applied["checkpoint"] == 1 and applied["done"] == {"create": 4}
    assert applied["plan"]["summary"] == {"create": 4} and applied["failures"] == []
    assert "create" in err, "progress goes to stderr"
    assert secret_of(proj) not in json.dumps(applied)

    assert proj.run("preview", "--exit-code")[0] == 0
    code, plan, _ = run_json(proj, "preview", "--exit-code", "--json")
    assert code == 0 and plan["summary"] == {"same": 4}

    proj.append_program("raise RuntimeError('broken program')\n")
    code, out, err = proj.run("preview", "--exit-code", "--json")
    assert code == 1 and out == "" and "broken program" in err
    code, out, err = proj.run("preview", "--exit-code", "--no-such-option")
    assert code == 1, "a command line it cannot parse is an error (1), not 'changes' (2)"


def test_refresh_reports_drift_as_json_and_exit_code_and_the_next_up_puts_it_back(project) -> None:
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    code, found, _ = run_json(proj, "refresh", "--json", "--exit-code")
    assert code == 0 and found["drifted"] == 0 and found["checked"] == 4 and found["drift"] == []

    proj.file("out/site.txt").write_text("edited by hand")
    proj.file("out/kept.txt").write_text("edited too")
    proj.file("out/creds.env").unlink()
    before = proj.db_bytes()
    code, found, _ = run_json(proj, "refresh", "--json", "--exit-code")
    assert code == 2 and found["recorded"] is False and found["checkpoint"] is None
    assert proj.db_bytes() == before, "a refresh without --yes records nothing"
    drift = {d["urn"]: d for d in found["drift"]}
    assert drift[proj.urn("local:File", "creds")]["kind"] == "deleted"
    assert drift[proj.urn("local:File", "site")]["diffs"] == [
        {"path": "content", "kind": "update", "old": "hello", "new": "edited by hand"}]
    assert secret_of(proj) not in json.dumps(found)
    code, out, _ = proj.run("refresh")
    assert code == 0 and "`stackwright up` puts the declared values back" in out
    assert proj.db_bytes() == before

    assert "found by the last `refresh`" in proj.ok("preview"), "preview shows what up will do"
    code, applied, err = run_json(proj, "up", "--yes", "--json")
    assert code == 0, err
    steps = {s["urn"]: s for s in applied["plan"]["steps"]}
    assert steps[proj.urn("local:File", "site")]["op"] == "update"
    assert steps[proj.urn("local:File", "creds")]["op"] == "create"
    kept = steps[proj.urn("local:File", "kept")]
    assert kept["op"] == "same"
    assert kept["notes"] == ['content: kept at "edited too", not set to the declared "declared": '
                             "ignore_changes lists it", STEP_NOTE]
    assert proj.file("out/site.txt").read_text() == "hello"
    assert proj.file("out/creds.env").read_text().startswith("PASSWORD=")
    assert proj.file("out/kept.txt").read_text() == "edited too"
    assert "ignore_changes lists it" in proj.ok("preview"), "the text preview says why too"
    assert run_json(proj, "refresh", "--json", "--exit-code")[0] == 0


def test_refresh_yes_records_drift_then_up_restores_it(project) -> None:
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    proj.file("out/site.txt").write_text("edited by hand")
    code, found, _ = run_json(proj, "refresh", "--yes", "--json")
    assert code == 0 and found["recorded"] is True and found["checkpoint"] == 2
    assert [d["urn"] for d in found["drift"]] == [proj.urn("local:File", "site")]
    code, applied, _ = run_json(proj, "up", "--yes", "--json")
    assert code == 0 and applied["done"] == {"update": 1}
    assert proj.file("out/site.txt").read_text() == "hello"


def test_destroy_and_history_as_json(project) -> None:
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    code, destroyed, err = run_json(proj, "destroy", "--yes", "--json")
    assert code == 0, err
    assert destroyed["kind"] == "destroy" and destroyed["done"] == {"delete": 4}
    assert destroyed["result"] == "succeeded" and destroyed["checkpoint"] == 2
    assert not proj.file("out/site.txt").exists()

    code, history, _ = run_json(proj, "history", "--json")
    assert code == 0 and history["stack"] == "dev"
    assert [(c["number"], c["kind"], c["result"]) for c in history["checkpoints"]] == [
        (1, "up", "succeeded"), (2, "destroy", "succeeded")]
    assert history["checkpoints"][0]["who"] == "tester"
    assert history["checkpoints"][0]["started_at"].endswith("Z")
    code, shown, _ = run_json(proj, "history", "show", "1", "--json")
    assert code == 0 and shown["checkpoint"]["number"] == 1
    assert {c["urn"] for c in shown["changes"]} >= {proj.urn("local:File", "site")}
    assert shown["outputs"] == {"password": "[secret]"}


def test_a_failed_up_prints_its_document_and_exits_1(project) -> None:
    proj = project('local.File("bad", path="out", content="x")\nlocal.File("ok", path="ok.txt", content="y")\n')
    proj.file("out").mkdir()
    code, applied, _ = run_json(proj, "up", "--yes", "--json")
    assert code == 1
    assert applied["result"] == "failed"
    assert [f["urn"] for f in applied["failures"]] == [proj.urn("local:File", "bad")]
    assert applied["done"] == {"create": 1}
    code, history, _ = run_json(proj, "history", "--json")
    assert history["checkpoints"][0]["counts"] == {"create": 1, "failed": 1}, "what was applied, the failure apart"
    assert proj.ok("history").splitlines()[1].endswith("failed  create 1, failed 1")


# --- prompts -------------------------------------------------------------------------------


def test_declining_a_prompt_exits_non_zero_and_changes_nothing(project) -> None:
    proj = project(PROGRAM)
    proj.ok("up", "--yes")
    proj.file("legacy.conf").write_text("port = 8080\n")
    proj.write_program(PROGRAM.replace('"hello"', '"changed"'))
    before = proj.tree()
    for args in (["up"], ["destroy"], ["import", "local:File", "legacy", "legacy.conf"]):
        code, shown = on_terminal(proj, *args, typed="n\n")
        assert code == 1, (args, shown)
        assert "nothing was changed" in shown, shown
        assert proj.tree() == before, f"{args} changed something"
    code, shown = on_terminal(proj, "up", "--json", typed="n\n")
    assert code == 1 and '"result": "cancelled"' in shown
    assert proj.tree() == before


def test_import_shows_what_it_records_asks_and_protects_until_declared(project) -> None:
    proj = project('local.File("site", path="site.txt", content="hello")\n')
    proj.ok("up", "--yes")
    proj.file("legacy.conf").write_text("port = 8080\n")
    code, shown = on_terminal(proj, "import", "local:File", "legacy", "legacy.conf", typed="y\n")
    assert code == 0, shown
    assert "Import local:File legacy.conf as" in shown and "port = 8080" in shown
    assert "Record it in the state?" in shown
    urn = proj.urn("local:File", "legacy")
    assert "flags: protect, external" in proj.ok("state", "show", urn)

    err = proj.fails("up", "--yes")
    assert "protected" in err and "imported" in err
    assert proj.file("legacy.conf").read_text() == "port = 8080\n", "not deleted"

    proj.append_program('local.File("legacy", path="legacy.conf", content="port = 8080\\n")\n')
    plan = document(proj.ok("preview", "--json"))
    step = next(s for s in plan["steps"] if s["urn"] == urn)
    assert step["op"] == "same"
    assert step["options"] == [{"path": "protect", "kind": "update", "old": True, "new": False}]
    proj.ok("up", "--yes")
    assert "protect" not in proj.ok("state", "show", urn)


def test_piped_input_is_refused_saying_why_and_how(project) -> None:
    """``echo y | stackwright up``: the answer on a pipe is not read; the error says
    that stdin is not a terminal and that --yes applies without asking."""
    proj = project(PROGRAM)
    done = subprocess.run([sys.executable, "-m", "stackwright.cli.main", "up"], cwd=proj.root, env=cli_env(),
                          input="y\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    error, hint = [line for line in done.stderr.splitlines() if line.startswith(("error:", "  hint:"))]
    assert "without confirmation: standard input is not a terminal" in error, error
    assert "piped input is not taken as an answer" in error and "--yes" in hint
    assert not proj.file("out/site.txt").exists()


def test_import_without_a_terminal_needs_yes(project) -> None:
    proj = project('local.File("site", path="site.txt", content="hello")\n')
    proj.file("legacy.conf").write_text("port = 8080\n")
    err = proj.fails("import", "local:File", "legacy", "legacy.conf")
    assert "--yes" in err
    assert "legacy" not in proj.ok("state", "ls")


def test_stack_rm_asks_and_without_a_terminal_needs_yes(project) -> None:
    proj = project('local.File("site", path="site.txt", content="hello")\n')
    proj.ok("up", "--yes")
    proj.ok("stack", "init", "dev-alex")
    before = proj.state_rows()
    err = proj.fails("stack", "rm", "dev-alex")
    assert [line.split(":")[0].strip() for line in err.splitlines() if line.strip()] == ["error", "hint"], err
    assert "pass --yes" in err
    assert proj.state_rows() == before, "nothing is removed without confirmation"
    assert proj.attempts() == 1, "the refused removal is audited"
    before = proj.db_bytes()

    code, shown = on_terminal(proj, "stack", "rm", "--force", "dev", typed="n\n")
    assert code == 1 and "nothing was changed" in shown, shown
    assert "Remove stack 'dev' with its state and history? It still records 1 resource(s)" in shown
    assert proj.db_bytes() == before
    code, shown = on_terminal(proj, "stack", "rm", "dev-alex", typed="y\n")
    assert code == 0 and "Removed stack 'dev-alex'" in shown, shown
    assert [line.split()[0] for line in proj.ok("stack", "ls").splitlines()[1:]] == ["dev"]


# --- colour --------------------------------------------------------------------------------


def test_colour_follows_no_color_and_the_color_option(project) -> None:
    proj = project('local.File("site", path="site.txt", content="hello")\n')
    proj.ok("up", "--yes")
    for args, seen in ((["preview", "--show-same"], "site"), (["history"], "succeeded")):
        code, shown = on_terminal(proj, *args)
        assert code == 0 and ESC in shown, f"a terminal gets colour: {args}"
        code, shown = on_terminal(proj, *args, NO_COLOR="1")
        assert code == 0 and ESC not in shown and seen in shown, f"NO_COLOR: {args}"
        code, shown = on_terminal(proj, "--color", "never", *args)
        assert code == 0 and ESC not in shown and seen in shown, f"--color never: {args}"
        code, out, _ = proj.run("--color", "always", *args)
        assert code == 0 and ESC in out, f"--color always colours a pipe: {args}"
        code, out, _ = proj.run(*args)
        assert code == 0 and ESC not in out, f"a pipe gets no colour by default: {args}"
        code, out, _ = proj.run(*args, "--color", "always")
        assert code == 0 and ESC in out, f"--color after the command: {args}"
        code, shown = on_terminal(proj, "--color", "always", *args, "--color", "never")
        assert code == 0 and ESC not in shown, f"the one after the command wins: {args}"
    code, out, err = proj.run("--color", "never", "up", "--yes", NO_COLOR="")
    assert code == 0 and ESC not in out + err
    err = proj.fails("--color", "always", "history", "show", "99")
    assert ESC in err, "errors follow --color too"


def test_history_is_a_table_one_line_per_checkpoint(project) -> None:
    proj = project('local.File("site", path="site.txt", content="hello")\n')
    proj.ok("up", "--yes")
    proj.ok("destroy", "--yes")
    lines = proj.ok("history").splitlines()
    assert lines[0].split() == ["#", "WHEN", "KIND", "WHO", "TIME", "RESULT", "CHANGES"]
    assert [line.split()[3] for line in lines[1:]] == ["up", "destroy"]
    assert all(line == line.rstrip() for line in lines)


def test_a_read_error_that_prints_a_secret_is_masked(project) -> None:
    proj = project("""\
        pw = random.Password("pw", length=24, special=False)
        local.Command("c", create="true", read='test -f fail && { echo "token=$PW" >&2; exit 3; }; echo ok',
                      environment={"PW": pw.result})
        sw.export("password", pw.result)
        """)
    proj.ok("up", "--yes")
    proj.file("fail").write_text("")
    code, out, err = proj.run("refresh", "--json", "--exit-code")
    assert code == 1, "a resource that could not be read is an error"
    found = document(out)
    assert [e["message"] for e in found["errors"]] == ["read command exited with status 3:\ntoken=[secret]"]
    code, text, text_err = proj.run("refresh")
    assert code == 1 and "token=[secret]" in text
    assert secret_of(proj) not in out + err + text + text_err
