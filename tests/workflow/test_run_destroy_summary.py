"""`run destroy` goes dependents first, so a stack left standing is one whose dependent
failed to go: the summary says that, not that it "needs" the failed stack."""

from __future__ import annotations

from pathlib import Path

from cli.conftest import run_cli
from support import write_workspace

BASE = 'import stackwright as sw\nfrom stackwright.providers import local\n'
PROGRAMS = {
    "network": BASE + 'local.File("vpc", path="vpc.txt", content="vpc")\nsw.export("vpc", "vpc-1")\n',
    "app": BASE + ('net = sw.StackReference("network/dev")\n'
                   'local.Command("stuck", create="true", delete="exit 4")\n'
                   'local.File("f", path="f.txt", content=net.output("vpc"))\n'),
}
WORKSPACE = 'projects:\n  - path: network\n  - path: app\n    depends_on: ["network/{stack}"]\n'


def workspace(root: Path) -> Path:
    return write_workspace(root, PROGRAMS, WORKSPACE)


def test_a_stack_kept_because_its_dependent_failed_to_go_is_named_so(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    code, out, err = run_cli(root, "run", "up", "--all", "--yes")
    assert code == 0, out + err
    code, out, err = run_cli(root, "run", "destroy", "--all", "--yes")
    assert code == 1, out + err
    summary = out[out.index("run destroy: 2 stack(s)"):]
    assert "failed      app/dev\n" in summary
    assert "skipped     network/dev (app/dev, which depends on it, failed)" in summary
    assert "needs" not in summary
    assert (root / "network" / "vpc.txt").exists() and not (root / "app" / "f.txt").exists()
