"""Crash safety on Kubernetes: `up` of a 50-object stack killed with SIGKILL at random
moments, then `up` again. The second `up` must leave exactly what the program
declares: every declared object once with the declared content, nothing else carrying
our label in the namespace, every URN recorded once, no pending operation, and a
preview with no changes. (API server names are unique, so "no duplicate" means no
object under a name the program does not declare, and one record per object.)"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kube import Kube, recorded
from support import VersionedProject, cli_command, cli_env, kill_after, unlock_after_kill

from stackwright.providers.k8s.manifests import MANAGED_BY_LABEL

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

TRIALS = int(os.environ.get("K8S_CRASH_TRIALS", "6"))
SEED = int(os.environ.get("K8S_CRASH_SEED", "5"))
STACK = "dev"
TIMEOUT = 300.0

PROGRAM = '''\
import stackwright as sw
from stackwright.providers import k8s

config = sw.Config()
version = config.require_int("version")
ns = config.require_str("ns")
parity = version % 2

prev = k8s.ConfigMap("root", metadata={"namespace": ns}, data={"version": str(version)})
for i in range(20):                     # a chain, updated in place every version
    prev = k8s.ConfigMap(f"chain-{i}", metadata={"namespace": ns},
                         data={"after": prev.uid, "version": str(version)})
for i in range(15):                     # never changes
    k8s.ConfigMap(f"steady-{i}", metadata={"namespace": ns}, data={"i": str(i)})
for i in range(5):                      # renamed every version: a new object, the old one goes
    k8s.ConfigMap(f"moving-{i}", metadata={"name": f"moving-{i}-{parity}", "namespace": ns},
                  data={"parity": str(parity)})
for i in range(9 if parity else 4):     # created in odd versions, deleted in even ones
    k8s.ConfigMap(f"odd-{i}", metadata={"namespace": ns}, data={"after": prev.uid})
'''


def expected(version: int) -> dict[str, dict[str, str] | None]:
    """Object name → data (None where it holds a uid, checked separately)."""
    parity = version % 2
    objects: dict[str, dict[str, str] | None] = {"root": {"version": str(version)}}
    objects.update({f"chain-{i}": None for i in range(20)})
    objects.update({f"steady-{i}": {"i": str(i)} for i in range(15)})
    objects.update({f"moving-{i}-{parity}": {"parity": str(parity)} for i in range(5)})
    objects.update({f"odd-{i}": None for i in range(9 if parity else 4)})
    return objects


class Project(VersionedProject):
    def __init__(self, root: Path, kubeconfig: Path, ns: str) -> None:
        self.kubeconfig, self.ns = kubeconfig, ns
        super().__init__(root, "crash", PROGRAM, STACK, TIMEOUT)

    def set_version(self, version: int, **config: object) -> None:
        lines = [f"  version: {version}", f"  ns: {self.ns}",
                 f"  k8s: {{kubeconfig: {self.kubeconfig}}}"]
        (self.root / "stacks").mkdir(exist_ok=True)
        (self.root / "stacks" / f"{STACK}.yaml").write_text("\n".join(["config:", *lines, ""]))

    def spawn_up(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*cli_command(), "up", "--yes", "--parallel", "4"], cwd=self.root,
                                env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)


def check_converged(project: Project, kube: Kube, version: int, context: str) -> None:
    want = expected(version)
    items = kube.ok("GET", f"/api/v1/namespaces/{project.ns}/configmaps?labelSelector={MANAGED_BY_LABEL}")["items"]
    found = {item["metadata"]["name"]: item for item in items}
    orphans, missing = sorted(set(found) - set(want)), sorted(set(want) - set(found))
    assert not orphans and not missing, f"{context}: orphans {orphans}, missing {missing}"
    for name, data in want.items():
        if data is not None:
            assert found[name]["data"] == data, f"{context}: {name} has {found[name]['data']}"
    uid = {name: item["metadata"]["uid"] for name, item in found.items()}
    assert found["chain-0"]["data"] == {"after": uid["root"], "version": str(version)}, context
    for i in range(1, 20):
        assert found[f"chain-{i}"]["data"]["after"] == uid[f"chain-{i - 1}"], context
    assert all(found[n]["data"] == {"after": uid["chain-19"]} for n in want if n.startswith("odd-")), context

    snapshot, lock = recorded(project.root, STACK)
    assert snapshot.pending == [], f"{context}: pending left: {snapshot.pending}"
    assert lock is None, f"{context}: lock left behind"
    ids = sorted(r.id for r in snapshot.resources.values())
    assert ids == sorted(f"{project.ns}/{name}" for name in want), f"{context}: state records {ids}"
    preview = project.ok("preview")
    assert "No changes." in preview, f"{context}:\n{preview}"


def test_sigkill_during_a_50_object_up_never_orphans_or_duplicates(
        tmp_path: Path, local_cluster: Any) -> None:
    kube = Kube(local_cluster.kubeconfig)
    project = Project(tmp_path / "crash", local_cluster.kubeconfig, kube.namespace())
    assert len(expected(1)) == 50
    project.ok("up", "--yes", "--parallel", "4")
    check_converged(project, kube, 1, "initial up")
    project.set_version(2)
    started = time.monotonic()
    project.ok("up", "--yes", "--parallel", "4")
    duration = time.monotonic() - started
    check_converged(project, kube, 2, "undisturbed up")

    rng = random.Random(SEED)
    killed = 0
    for trial in range(TRIALS):
        version = 3 + trial
        delay = rng.uniform(0.3, max(0.3, 0.7 * duration))  # within the up, even a faster one
        context = f"trial {trial} (version {version}, killed after {delay:.2f}s)"
        project.set_version(version)
        proc = project.spawn_up()
        code = kill_after(proc, delay, TIMEOUT)
        killed += code == -signal.SIGKILL
        assert code in (0, -signal.SIGKILL), f"{context}: the undisturbed up exited {code}"
        unlock_after_kill(project, proc.pid, context)
        project.ok("up", "--yes", "--parallel", "4")
        check_converged(project, kube, version, context)
    assert killed > 0, "no trial killed an up while it ran"
