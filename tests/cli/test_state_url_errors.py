"""A state store that cannot be reached is a two-line error (error and hint) through the
real command, like every other error; the driver's multi-line message is folded."""

from __future__ import annotations

import socket

from cli.conftest import CliProject
from cli.test_failures import one_error


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_postgresql_store_is_one_error_line_and_a_hint(project) -> None:
    proj: CliProject = project('h = local.File("h", path="h.txt", content="x")\n')
    url = f"postgresql://deploy:hunter2@127.0.0.1:{closed_port()}/state?connect_timeout=2"
    code, out, err = proj.run("preview", STACKWRIGHT_STATE_URL=url)
    assert code == 1 and out == "" and "Traceback" not in err
    first = one_error(err)
    assert "cannot connect to the PostgreSQL state store" in first and "Connection refused" in first
    assert "hunter2" not in err and "\t" not in err
