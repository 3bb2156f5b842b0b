"""gitops render|diff|status: a project's Kubernetes objects as files for Argo CD or Flux."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from stackwright.program.project import Project


def register(cli: click.Group) -> None:
    cli.add_command(gitops)


@click.group("gitops")
def gitops() -> None:
    """Export rendered Kubernetes objects to git, diff revisions, compare with a cluster."""


def _project() -> Project:
    import os

    from stackwright.program.project import find_project

    project = find_project()
    os.chdir(project.root)
    return project


@gitops.command("render")
@click.option("--stack", "-s", "stacks", multiple=True, help="A stack to render (repeatable; default: every stack).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write (inside the git repository the controllers read).")
@click.option("--format", "fmt", type=click.Choice(["argocd", "flux"]), default="argocd", show_default=True,
              help="Argo CD Applications or Flux Kustomizations over the folders.")
def gitops_render(stacks: tuple[str, ...], out: Path, fmt: str) -> None:
    """Write every object the stacks render, one file per object, Secrets encrypted."""
    from stackwright.gitops.render import render_project, selected_stacks

    out = out.resolve()
    project = _project()
    names = selected_stacks(project, stacks)
    result = render_project(project, names, out, fmt)  # type: ignore[arg-type]  # click.Choice
    click.echo(f"Rendered {result.objects} object(s) of {', '.join(names)} into {out}: "
               f"{len(result.written)} written, {result.unchanged} unchanged, {len(result.removed)} removed.")


@gitops.command("diff")
@click.option("--since", "ref", required=True, help="The git revision to compare with (a branch, tag, commit, HEAD~1).")
@click.option("--stack", "-s", "stacks", multiple=True, help="A stack to compare (repeatable; default: every stack).")
def gitops_diff(ref: str, stacks: tuple[str, ...]) -> None:
    """Show which rendered objects and fields change between REF and the working tree."""
    from stackwright.gitops.diff import describe, diff_objects, objects_at_revision
    from stackwright.gitops.render import objects_for_stack, selected_stacks

    project = _project()
    names = selected_stacks(project, stacks)
    before = objects_at_revision(project, ref, names)
    after = [o for stack in names for o in objects_for_stack(project, stack)]
    click.echo("\n".join(describe(diff_objects(before, after))))
