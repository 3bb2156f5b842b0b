"""`config set KEY VALUE` stores the value typed: `config get KEY` prints VALUE back, and
the program reads the same value. Only a number or boolean written as `config get`
prints one becomes that type; any other text is kept exactly (a ` #`, a leading zero,
`no`, line breaks), where reading it as YAML once cut comments and turned `0777` into 511."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from stackwright.cli.main import cli
from stackwright.program.project import load_project, stack_settings
from cli.conftest import CliProject

CERT = "-----BEGIN CERT-----\nabc\n-----END CERT-----"

TYPED: list[tuple[str, Any]] = [
    ("3", 3), ("-2", -2), ("2.5", 2.5), ("0.1", 0.1), ("true", True), ("false", False),
]
TEXT = [
    "hello # world", "1.10", "0777", "no", "yes", "on", "off", "Yes", "True", "1:20", "2001-12-14",
    "1_000", "0x1f", "+1", "-0", "1e3", ".inf", "null", "~", "", " padded ", "[1, 2]", "{a: 1}",
    "- item", "key: value", "{secure: abc}", "'quoted'", CERT, "two\nlines\n", "ends\n\n\n", " indented\nnext",
    "trailing \nspace ", "\nleading break", "tab\tand\nlines", "\t\nx", "crlf\r\nline", "nel\x85line", "9" * 5000,
]


@pytest.fixture
def proj(project: Callable[..., CliProject], monkeypatch: pytest.MonkeyPatch) -> CliProject:
    made = project('local.File("motd", path="motd.txt", content=sw.Config().require_str("greeting"))\n',
                   {"greeting": "hi"})
    monkeypatch.chdir(made.root)
    return made


def run(*args: str) -> str:
    """The command run in this process (the table below is long); its output as written
    (``output`` would turn ``\\r\\n`` into ``\\n``)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes.decode()


def test_config_set_then_get_prints_the_value_typed(proj: CliProject) -> None:
    wrong = []
    for number, (text, value) in enumerate([*TYPED, *((text, text) for text in TEXT)]):
        key = f"key{number}"
        run("config", "set", key, "--", text)
        printed = run("config", "get", key)
        read = stack_settings(load_project(proj.root), "dev")["config"][key]  # as sw.Config() gets it
        if printed != text + "\n" or read != value or type(read) is not type(value):
            wrong.append((text, printed, read))
    assert wrong == []


def test_string_stores_a_number_as_text_the_program_reads_with_get_str(proj: CliProject) -> None:
    proj.ok("config", "set", "greeting", "42")
    err = proj.fails("preview")
    assert "config key 'greeting' must be str, got 42" in err
    assert "config set greeting 42 --string" in err

    proj.ok("config", "set", "greeting", "42", "--string")
    assert proj.ok("config", "get", "greeting") == "42\n"
    assert "greeting: '42'" in proj.file("stacks/dev.yaml").read_text()
    proj.ok("up", "--yes")
    assert proj.file("motd.txt").read_text() == "42"


def test_a_multi_line_value_is_a_literal_block_in_the_stack_file(proj: CliProject) -> None:
    proj.ok("config", "set", "cert", "--", CERT)
    assert "cert: |-\n    -----BEGIN CERT-----\n    abc\n    -----END CERT-----\n" in \
        proj.file("stacks/dev.yaml").read_text()


@pytest.mark.parametrize("key", ["", "db..port", ".db", "db.", "."])
def test_a_key_with_an_empty_part_is_refused_naming_it(proj: CliProject, key: str) -> None:
    before = proj.file("stacks/dev.yaml").read_text()
    err = proj.fails("config", "set", key, "v")
    assert err.strip().splitlines() == [f"error: invalid config key {key!r}: a part of it is empty "
                                        "(nested keys are written db.port)"]
    assert proj.file("stacks/dev.yaml").read_text() == before


def test_removing_the_last_key_of_a_mapping_removes_the_mapping_it_emptied(proj: CliProject) -> None:
    """`config rm db.password` leaves no `db: {}` behind; a parent that still holds
    another key stays, and so does a mapping the file held empty before."""
    stack_file = proj.file("stacks/dev.yaml")
    stack_file.write_text(stack_file.read_text() + "  empty: {}  # kept as written\n")
    run("config", "set", "db.password", "--secret", "correct horse")
    run("config", "set", "app.db.user", "admin")
    run("config", "set", "app.db.port", "5432")
    run("config", "rm", "db.password")
    run("config", "rm", "app.db.user")
    assert stack_settings(load_project(proj.root), "dev")["config"] == {
        "greeting": "hi", "empty": {}, "app": {"db": {"port": 5432}}}
    run("config", "rm", "app.db.port")
    text = stack_file.read_text()
    assert stack_settings(load_project(proj.root), "dev")["config"] == {"greeting": "hi", "empty": {}}
    assert "db" not in text and "app" not in text and "empty: {}  # kept as written" in text
