"""Which ``allowed_signers`` counts for a project (docs/trust.md): inside a git repository
the nearest one up to the repository's root; outside any, only the project folder's, or
that of the workspace listing the project, never a parent folder someone else may write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackwright.program.project import load_project
from stackwright.workflow import approvals
from stackwright.workflow.signing import SIGNERS_FILE, find_signers_file

WORKSPACE = "projects:\n  - path: proj\n    stacks: [dev]\n"


def project_in(folder: Path) -> Path:
    root = folder / "proj"
    root.mkdir(parents=True)
    (root / "stackwright.yaml").write_text("name: proj\nmain: __main__.py\n")
    (root / "__main__.py").write_text("")
    return root


def signers(folder: Path) -> Path:
    path = folder / SIGNERS_FILE
    path.write_text("bob ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKZ0\n")
    return path


def test_outside_a_repository_a_parent_folders_file_is_not_used(tmp_path: Path) -> None:
    root = project_in(tmp_path / "shared")
    ignored = signers(tmp_path / "shared")
    assert find_signers_file(root) is None
    note = approvals.signers_note(load_project(root))
    assert note == (f" ({ignored} is not used: outside a git repository only the project folder's "
                    "allowed_signers counts, or that of the workspace listing the project)")
    mine = signers(root)
    assert find_signers_file(root) == mine
    assert approvals.signers_note(load_project(root)) == ""


def test_inside_a_repository_the_nearest_file_up_to_its_root_counts(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    root = project_in(repo / "infra")
    (repo / ".git").mkdir()
    signers(tmp_path)  # above the repository: never
    assert find_signers_file(root) is None
    assert approvals.signers_note(load_project(root)) == (
        f" ({tmp_path / SIGNERS_FILE} is not used: it is outside the project's git repository)")
    at_root = signers(repo)
    assert find_signers_file(root) == at_root
    assert find_signers_file(root, lambda: pytest.fail("not asked inside a repository")) == at_root


def test_outside_a_repository_the_workspace_listing_the_project_counts(tmp_path: Path) -> None:
    root = project_in(tmp_path / "ws")
    at_root = signers(tmp_path / "ws")
    assert find_signers_file(root) is None, "not without a workspace"
    (tmp_path / "ws" / "stackwright-workspace.yaml").write_text(WORKSPACE.replace("proj", "other"))
    (tmp_path / "ws" / "other").mkdir()
    (tmp_path / "ws" / "other" / "stackwright.yaml").write_text("name: other\nmain: __main__.py\n")
    (tmp_path / "ws" / "other" / "__main__.py").write_text("")
    assert approvals.signers_file(load_project(root)) is None, "not a workspace that does not list it"
    (tmp_path / "ws" / "stackwright-workspace.yaml").write_text(WORKSPACE)
    assert approvals.signers_file(load_project(root)) == at_root


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
def test_a_workspace_root_file_written_by_someone_else_is_not_used(tmp_path: Path) -> None:
    root = project_in(tmp_path / "ws")
    at_root = signers(tmp_path / "ws")
    workspace = tmp_path / "ws" / "stackwright-workspace.yaml"
    workspace.write_text(WORKSPACE)
    assert approvals.signers_file(load_project(root)) == at_root
    for planted in (at_root, workspace, tmp_path / "ws"):
        os.chown(planted, 4242, -1)
        assert approvals.signers_file(load_project(root)) is None, planted
        assert approvals.signers_note(load_project(root)) == (
            f" ({at_root} is not used: the workspace's folder, workspace file or allowed_signers has another "
            "owner than the project folder)")
        os.chown(planted, os.geteuid(), -1)
