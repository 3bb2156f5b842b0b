"""`stackwright new` and `stack init`: files a new project or stack starts from."""

from __future__ import annotations

from pathlib import Path

from stackwright.errors import ProjectError
from stackwright.operations.session import open_store
from stackwright.program.project import Project, check_project_name, check_stack_name, load_project, select_stack

PROGRAM = '''"""{name}: a Stackwright program. Run `stackwright preview`, then `stackwright up`."""

import stackwright as sw
from stackwright.providers import local, random

config = sw.Config()
greeting = config.get_str("greeting", "hello")

password = random.Password("db-password", length=20)
site_id = random.Id("site-id", byte_length=4)

index = local.File(
    "index",
    path=sw.fmt("out/{{}}/index.html", sw.get_stack()),
    content=sw.fmt("<h1>{{}} from {{}}</h1>\\n", greeting, site_id.hex),
)
secret_file = local.File(
    "db-credentials",
    path=sw.fmt("out/{{}}/db.env", sw.get_stack()),
    content=sw.fmt("PASSWORD={{}}\\n", password.result),
    mode=0o600,
)

sw.export("index_path", index.path)
sw.export("site_id", site_id.hex)
sw.export("db_password", password.result)
'''

PROJECT_FILE = """name: {name}
description: A Stackwright project
main: __main__.py
"""

STACK_FILE = """# Config for stack {stack}; read it in the program with sw.Config().
config:
  greeting: hello
"""

GITIGNORE = ".stackwright/\n/out/\n__pycache__/\n"
"""The program's output is the top-level ``out/`` only: a deeper ``out`` folder is code,
which the program digest covers (``program.digest``)."""


def scaffold(directory: Path, name: str, stack: str) -> Project:
    """A runnable project in ``directory`` with ``stack`` selected; the names are checked
    before anything is written, so that a refused one leaves no half-made folder."""
    if (directory / "stackwright.yaml").exists():
        raise ProjectError(f"{directory} already holds a Stackwright project")
    check_project_name(name)
    check_stack_name(stack)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "stackwright.yaml").write_text(PROJECT_FILE.format(name=name))
        (directory / "__main__.py").write_text(PROGRAM.format(name=name))
        (directory / ".gitignore").write_text(GITIGNORE)
    except OSError as exc:
        raise ProjectError(f"cannot create a project in {directory}: {exc.strerror}",
                           hint="pass a folder you can write to") from None
    project = load_project(directory)
    init_stack(project, stack)
    return project


def init_stack(project: Project, stack: str) -> None:
    check_stack_name(stack)
    store = open_store(project)
    try:
        store.create_stack(stack)
    finally:
        store.close()
    path = project.stack_file(stack)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(STACK_FILE.format(stack=stack))
    select_stack(project, stack)
