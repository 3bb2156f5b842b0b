"""Project files are checked by pydantic-core from the schemas compiled into
``program/compiled_schemas.py`` (no pydantic import, no models built: a third of a
sharded worker's start-up). That compiled form must accept exactly what the pydantic
models accept, be regenerated with the schemas, and never be used once stale."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackwright.program import compiled_schemas, project_files
from stackwright.program.project_files import PROJECT_SCHEMA, STACK_SCHEMA, WORKSPACE_SCHEMA, Schema
from stackwright.workflow.environments import RULES_SCHEMA

REPO = Path(__file__).resolve().parents[2]

import pydantic_core  # noqa: E402

COMPILED_HERE = pydantic_core.__version__ == compiled_schemas.PYDANTIC_CORE
"""The compiled schemas were made by the installed pydantic-core. A clean install may
bring a newer one (pydantic is pinned to a range): then every file is checked by the
pydantic models instead, and the tests below say so rather than fail."""

DOCUMENTS: list[tuple[Schema, Any]] = [
    (WORKSPACE_SCHEMA, {"projects": [{"path": "base", "stacks": ["main"]},
                                     {"path": "apps", "stacks": "*", "depends_on": ["base/main"]},
                                     {"path": "top", "stacks": [{"name": "main", "depends_on": ["apps/a"]}]}],
                        "python_path": ["lib"]}),
    (WORKSPACE_SCHEMA, {"projects": [{"path": "base", "stacks": "all"}]}),
    (WORKSPACE_SCHEMA, {"projects": [{"path": ""}]}),
    (WORKSPACE_SCHEMA, {"projects": [{"path": "base", "stack": ["main"]}]}),
    (WORKSPACE_SCHEMA, {"projects": [{"path": "base", "stacks": [{"name": "main", "depends": []}]}]}),
    (WORKSPACE_SCHEMA, {"python_path": ["lib"]}),
    (WORKSPACE_SCHEMA, {"projects": [{"path": 3}]}),
    (PROJECT_SCHEMA, {"name": "apps"}),
    (PROJECT_SCHEMA, {"name": "apps", "state": {"url": "postgresql://db/x", "read_only": True}}),
    (PROJECT_SCHEMA, {"name": "apps", "state": {"read_only": "yes"}}),
    (PROJECT_SCHEMA, {"name": "apps", "enviroments": {}}),
    (PROJECT_SCHEMA, {"main": "__main__.py"}),
    (STACK_SCHEMA, {"config": {"synthetic": {"latency": 0.05}, "tenants": [{"name": "a"}]}}),
    (STACK_SCHEMA, {"config": None, "environment": "production", "secrets": {"age": ["age1x"]}}),
    (STACK_SCHEMA, {"config": {1: "a key that is not text"}}),
    (STACK_SCHEMA, {"config": ["a list"]}),
    (STACK_SCHEMA, {"enviroment": "production"}),
    (STACK_SCHEMA, {"paused": {"at": "now", "values": {"replicas": 3}, "absent": ["x"]}}),
    (STACK_SCHEMA, {"paused": {"values": [], "absent": []}}),
    (RULES_SCHEMA, {"name": "apps"}),
    (RULES_SCHEMA, {"name": "apps", "environments": {"production": {"protected": True, "required_approvals": 2,
                                                                   "approvers": ["group:ops"]},
                                                    "dev": None},
                    "groups": {"ops": ["ann"]}}),
    (RULES_SCHEMA, {"name": "apps", "environments": {"production": {"protectd": True}}}),
    (RULES_SCHEMA, {"name": "apps", "environments": {"production": {"required_approvals": "2"}}}),
    (RULES_SCHEMA, {"name": "apps", "environments": {"production": {"required_approvals": True}}}),
    (RULES_SCHEMA, {"name": "apps", "environments": {"production": {"policies": {"no-destroy": "bogus"}}}}),
]


def accepted_by_pydantic(schema: Schema, data: Any) -> bool:
    from pydantic import ValidationError

    try:
        schema.model().model_validate(data)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("schema", "data"), DOCUMENTS)
def test_the_compiled_schema_accepts_what_the_model_accepts(schema: Schema, data: Any) -> None:
    if not COMPILED_HERE:
        assert project_files._compiled(schema) is None, "a schema compiled by another pydantic-core was used"
        return
    assert project_files._compiled(schema) is not None, f"no up-to-date compiled schema for {schema.kind}"
    assert project_files._fits_compiled(data, schema) == accepted_by_pydantic(schema, data)


def test_the_compiled_schemas_are_up_to_date() -> None:
    """Fails after a schema changed until `.venv/bin/python tools/compile_schemas.py` runs."""
    spec = importlib.util.spec_from_file_location("compile_schemas", REPO / "tools" / "compile_schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.generate()
    committed = (REPO / "src" / "stackwright" / "program" / "compiled_schemas.py").read_text()
    if COMPILED_HERE:
        assert generated == committed
    else:  # another pydantic-core writes other schemas; the sources' digests must still match
        fresh: dict[str, Any] = {}
        exec(generated, fresh)  # noqa: S102 - the generator's own output
        assert {k: v["digest"] for k, v in fresh["SCHEMAS"].items()} == \
            {k: v["digest"] for k, v in compiled_schemas.SCHEMAS.items()}


def test_a_stale_compiled_schema_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema edited since its compiled form was made: the model checks the file, and
    a mistake is still reported with its line and the key meant."""
    stale = {**compiled_schemas.SCHEMAS, "stack": {**compiled_schemas.SCHEMAS["stack"], "digest": "0" * 64}}
    monkeypatch.setattr(compiled_schemas, "SCHEMAS", stale)
    project_files._compiled.cache_clear()
    try:
        assert project_files._compiled(STACK_SCHEMA) is None
        assert not project_files._fits_compiled({"config": {}}, STACK_SCHEMA)
        content = b"config: {}\nenviroment: production\n"
        with pytest.raises(project_files.ProjectError) as raised:
            project_files.check({"config": {}, "enviroment": "production"}, content, "dev.yaml", STACK_SCHEMA)
        assert "dev.yaml:2" in str(raised.value) and "environment" in str(raised.value)
    finally:
        project_files._compiled.cache_clear()


def test_valid_files_are_checked_without_importing_pydantic(tmp_path: Path) -> None:
    (tmp_path / "stackwright-workspace.yaml").write_text(
        "projects:\n  - {path: app, stacks: \"*\", depends_on: []}\n")
    (tmp_path / "app" / "stacks").mkdir(parents=True)
    (tmp_path / "app" / "stackwright.yaml").write_text("name: app\n")
    (tmp_path / "app" / "__main__.py").write_text("")
    (tmp_path / "app" / "stacks" / "dev.yaml").write_text("config:\n  size: 3\n")
    script = """if True:
        import sys
        from pathlib import Path
        from stackwright.program.project import stack_settings
        from stackwright.program.workspace import load_workspace
        from stackwright.workflow.environments import environment_for
        workspace = load_workspace(Path("stackwright-workspace.yaml"))
        [entry] = workspace.projects
        assert stack_settings(entry.project, "dev")["config"] == {"size": 3}
        assert environment_for(entry.project, "dev").name == "dev"
        print(sorted(m for m in sys.modules if m.startswith("pydantic") and "core" not in m))
    """
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    if COMPILED_HERE:
        assert done.stdout.strip() == "[]"
    else:  # the models checked the files
        assert "'pydantic'" in done.stdout


RULES = """\
from __future__ import annotations
from dataclasses import dataclass, field
from typing import Literal

Level = Literal["advisory", "mandatory"]

@dataclass
class Rules:
    protected: bool = False
    approvers: list[str] = field(default_factory=list)
    level: Level = "advisory"
"""


def test_a_compiled_schema_follows_the_field_declarations_it_takes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing the module of a dataclass the schema takes fields from (its methods, its
    docs) leaves the compiled schema in use; changing its fields, or another source,
    does not."""
    other = tmp_path / "schema_source.py"
    other.write_text("A = 1\n")
    module = tmp_path / "rules_module.py"
    monkeypatch.syspath_prepend(str(tmp_path))

    def digest(text: str) -> str:
        module.write_text(text)
        sys.modules.pop("rules_module", None)
        project_files._schema_digest.cache_clear()
        rules = importlib.import_module("rules_module").Rules
        return project_files.schema_digest(Schema("rules", lambda: None, (str(module), str(other)),
                                                  fields_of=(rules,)))

    before = digest(RULES)
    assert digest(RULES + "\n    def allowed(self) -> bool:\n        return not self.protected\n") == before
    assert digest(RULES.replace("approvers: list[str] = field(default_factory=list)",
                                "approvers: list[str] | None = None")) != before
    assert digest(RULES.replace('"advisory", "mandatory"]', '"advisory", "mandatory", "off"]')) != before
    other.write_text("A = 2\n")
    assert digest(RULES) != before
    sys.modules.pop("rules_module", None)
