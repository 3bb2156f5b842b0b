"""gitops render|diff|status: a project's Kubernetes objects as files for Argo CD or Flux."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

if TYPE_CHECKING:
    from stackwright.gitops.controllers import Format
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
    result = render_project(project, names, out, cast("Format", fmt))
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


@gitops.command("status")
@click.option("--stack", "-s", "stacks", multiple=True, help="A stack to check (repeatable; default: every stack).")
def gitops_status(stacks: tuple[str, ...]) -> None:
    """Compare the live cluster with the rendered objects: sync and health per object
    and per namespace (tenant). Exits 2 when anything is out of sync."""
    from stackwright.gitops.render import objects_for_stack, selected_stacks
    from stackwright.gitops.status import Sync, by_namespace, statuses

    project = _project()
    found = statuses([o for stack in selected_stacks(project, stacks) for o in objects_for_stack(project, stack)])
    rows = [(s.obj.stack, s.obj.key, s.sync.value, s.health.value, s.reason) for s in found]
    _table(("STACK", "OBJECT", "SYNC", "HEALTH", "WAITING FOR"), rows)
    for status in found:
        for line in status.differences:
            click.echo(f"  {status.obj.stack} {status.obj.key}: {line}")
    click.echo("")
    groups = by_namespace(found)
    _table(("STACK", "NAMESPACE", "OBJECTS", "SYNC", "HEALTH"),
           [(g.stack, g.namespace, str(g.objects), g.sync.value, g.health.value) for g in groups])
    out_of_sync = sum(1 for s in found if s.sync is not Sync.SYNCED)
    click.echo(f"\n{len(found) - out_of_sync} of {len(found)} object(s) synced.")
    if out_of_sync:
        raise SystemExit(2)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
