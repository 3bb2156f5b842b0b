"""The public surface: what `import stackwright` offers and what it costs."""

from __future__ import annotations

import json
import subprocess
import sys

import stackwright

PUBLIC = [
    "UNKNOWN",
    "Alias",
    "Component",
    "Config",
    "Input",
    "Output",
    "ProviderError",
    "Resource",
    "ResourceOptions",
    "StackReference",
    "StackwrightError",
    "Violation",
    "export",
    "fmt",
    "get_project",
    "get_stack",
    "policy",
    "secret",
]


def test_all_is_pinned() -> None:
    assert stackwright.__all__ == PUBLIC
    for name in PUBLIC:
        assert hasattr(stackwright, name), name


def _modules_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_import_stackwright_stays_light() -> None:
    loaded = _modules_after("import stackwright")
    heavy = [m for m in loaded
             if m.split(".")[0] in ("boto3", "botocore", "pydantic", "rich")
             or m.startswith(("stackwright.engine", "stackwright.plan", "stackwright.state",
                              "stackwright.cli", "stackwright.providers.aws"))]
    assert heavy == []
    assert "stackwright.model.resource" in loaded


def test_the_local_providers_stay_light_too() -> None:
    loaded = _modules_after("import stackwright\nfrom stackwright.providers import local, random")
    assert not [m for m in loaded if m.split(".")[0] in ("boto3", "botocore", "pydantic", "rich")
                or m.startswith("stackwright.engine")]


def test_help_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "stackwright.cli.main", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: stackwright")
    for command in ("preview", "up", "destroy", "refresh", "import", "rollback", "history",
                    "outputs", "state", "stack"):
        assert f"  {command} " in done.stdout, command
    loaded = _modules_after("import stackwright.cli.main")
    assert not [m for m in loaded if m.split(".")[0] in ("boto3", "pydantic", "rich")
                or m.startswith("stackwright.engine")]
