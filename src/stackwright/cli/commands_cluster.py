"""local-cluster start|stop|status: a real Kubernetes API server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from stackwright.providers.registry import LocalClusterTool, RunningCluster


def register(cli: click.Group) -> None:
    cli.add_command(local_cluster)


@click.group("local-cluster")
def local_cluster() -> None:
    """Run a local Kubernetes cluster (etcd, kube-apiserver, controllers, kwok)."""


def _cluster_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
                      help="The cluster's folder (default ~/.cache/stackwright/local-cluster/NAME).")(fn)
    return click.option("--name", default="default", show_default=True,
                        help="Which local cluster; each has its own folder and ports.")(fn)


def _tool() -> LocalClusterTool:
    from stackwright.providers.registry import local_cluster as tool

    return tool("k8s")


def _folder(name: str, state_dir: Path | None) -> Path:
    return state_dir or _tool().default_state_dir(name)


def _describe(cluster: RunningCluster) -> str:
    how = f"kind cluster {cluster.kind}" if cluster.kind else ", ".join(cluster.pids)
    return (f"Local cluster running at {cluster.server} ({how}).\n"
            f"kubeconfig: {cluster.kubeconfig}\n"
            f"In a stack's config: {cluster.stack_config}")


@local_cluster.command("start")
@_cluster_options
@click.option("--kind", "use_kind", is_flag=True, help="Run the cluster with kind (needs Docker).")
def local_cluster_start(name: str, state_dir: Path | None, use_kind: bool) -> None:
    """Start the cluster (or say it is running) and print its kubeconfig."""
    localcluster = _tool()
    folder = _folder(name, state_dir)
    running = localcluster.status(folder)
    if running is not None:
        click.echo("Already running. " + _describe(running))
        return
    cluster = localcluster.start_kind(folder) if use_kind else localcluster.start(folder)
    click.echo(_describe(cluster))


@local_cluster.command("stop")
@_cluster_options
def local_cluster_stop(name: str, state_dir: Path | None) -> None:
    """Stop the cluster; its data stays for the next start."""
    localcluster = _tool()
    stopped = localcluster.stop(_folder(name, state_dir))
    click.echo("Local cluster stopped." if stopped else "The local cluster was not running.")


@local_cluster.command("status")
@_cluster_options
def local_cluster_status(name: str, state_dir: Path | None) -> None:
    """Say whether the cluster runs (exit 3 when it does not)."""
    localcluster = _tool()
    cluster = localcluster.status(_folder(name, state_dir))
    if cluster is None:
        click.echo("The local cluster is not running.")
        raise SystemExit(3)
    click.echo(_describe(cluster))
