"""A real local Kubernetes cluster on 127.0.0.1, run as background processes.

etcd and kube-apiserver run as controller-runtime's envtest runs them: generated
certificates, RBAC authorization, an admin kubeconfig. kube-controller-manager,
kube-scheduler and kwok's controller run beside them, so Deployments get ReplicaSets and
Pods, Pods are bound to a fake node and kwok reports them Running. No container ever runs.

The binaries come from ``tools/kube/build.sh`` (``make kube-tools``), which builds them
from pinned Go modules into the cache. A cluster's certificates, etcd data, logs, pids and
kubeconfig live in its folder (by default ``~/.cache/stackwright/local-cluster/<name>/``),
so ``status`` and ``stop`` work from any folder and a restarted cluster keeps its data.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stackwright.errors import StackwrightError
from stackwright.providers.k8s.localcluster_pki import SERVICE_IP, Pki, ensure_pki, kubeconfig
from stackwright.providers.processes import alive, free_port, terminate

KUBE_VERSION = "v1.37.2"
KWOK_VERSION = "v0.8.0"
"""Must match tools/kube/server/go.mod and tools/kube/kwok/go.mod (a test checks)."""

REQUIRED = ("etcd", "kube-apiserver")
OPTIONAL = ("kube-controller-manager", "kube-scheduler", "kwok")
FAKE_NODE = "kwok-node-0"
POD_CIDR = "10.244.0.0/16"
"""Where kwok takes Pod IPs from; apart from the service range (``SERVICE_RANGE``)."""
SERVICE_RANGE = "10.0.0.0/16"
"""Room for 65,534 Services: a platform of 1,000 tenants has a Service or more each."""
START_TIMEOUT = 120.0


class LocalClusterError(StackwrightError):
    """The local cluster cannot start, or a tool it needs is missing."""


@dataclass(frozen=True)
class LocalCluster:
    """A running cluster: where its API server answers and the admin kubeconfig for it."""

    state_dir: Path
    server: str
    kubeconfig: Path
    pids: dict[str, int] = field(default_factory=dict)
    kind: str | None = None
    """The kind cluster's name when ``--kind`` made it; None for the built-in cluster."""

    @property
    def stack_config(self) -> str:
        """The line a stack's config needs to point at this cluster."""
        return f"k8s: {{kubeconfig: {self.kubeconfig}}}"


def cache_root() -> Path:
    if explicit := os.environ.get("STACKWRIGHT_CACHE"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stackwright"


def default_state_dir(name: str) -> Path:
    return cache_root() / "local-cluster" / name


def binary(component: str) -> Path:
    """Where ``tools/kube/build.sh`` puts a component's binary."""
    if component == "kwok":
        return cache_root() / "kwok" / KWOK_VERSION / "bin" / "kwok"
    return cache_root() / "kube" / KUBE_VERSION / "bin" / component


def kwok_stages() -> Path:
    """kwok's default node and pod stages, copied from its module by the build."""
    return cache_root() / "kwok" / KWOK_VERSION / "stages.yaml"


def missing_tools() -> list[Path]:
    """Every binary (and kwok's stages) the full cluster needs that is not built yet."""
    wanted = [binary(c) for c in (*REQUIRED, *OPTIONAL)] + [kwok_stages()]
    return [path for path in wanted if not path.is_file()]


def _info_path(state_dir: Path) -> Path:
    return state_dir / "cluster.json"


def _load(state_dir: Path) -> LocalCluster | None:
    path = _info_path(state_dir)
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    return LocalCluster(state_dir=state_dir, server=info["server"],
                        kubeconfig=Path(info["kubeconfig"]),
                        pids={k: int(v) for k, v in info["pids"].items()}, kind=info.get("kind"))


def _save(cluster: LocalCluster) -> None:
    info = {"server": cluster.server, "kubeconfig": str(cluster.kubeconfig),
            "pids": cluster.pids, "kind": cluster.kind}
    _info_path(cluster.state_dir).write_text(json.dumps(info, indent=2) + "\n")


def status(state_dir: Path) -> LocalCluster | None:
    """The running cluster of this folder, or None."""
    cluster = _load(state_dir)
    if cluster is None:
        return None
    if cluster.kind is not None:
        return cluster if cluster.kind in _kind_clusters() else None
    apiserver = cluster.pids.get("kube-apiserver", 0)
    return cluster if alive(apiserver) and _ready(cluster.server, Pki.at(state_dir / "pki")) else None


def start(state_dir: Path, timeout: float = START_TIMEOUT) -> LocalCluster:
    """Start the cluster of this folder (or return the one already running)."""
    running = status(state_dir)
    if running is not None:
        return running
    _stop_leftovers(state_dir)
    missing = [binary(c) for c in REQUIRED if not binary(c).is_file()]
    if missing:
        raise LocalClusterError(
            f"{', '.join(p.name for p in missing)} not built (looked in {missing[0].parent})",
            hint="run `make kube-tools` in a Stackwright checkout (needs Go), "
                 "or `stackwright local-cluster start --kind` with Docker")
    state_dir.mkdir(parents=True, exist_ok=True)
    return _Launch(state_dir, timeout).run()


class _Launch:
    """One start: each component in one process group, stopped together if any fails."""

    def __init__(self, state_dir: Path, timeout: float) -> None:
        self.state_dir = state_dir
        self.deadline = time.monotonic() + timeout
        self.pki = ensure_pki(state_dir / "pki")
        self.logs = state_dir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.pids: dict[str, int] = {}
        self.group = 0

    def run(self) -> LocalCluster:
        try:
            return self._run()
        except BaseException:
            _stop_processes(self.pids)
            raise

    def _run(self) -> LocalCluster:
        etcd_url = f"http://127.0.0.1:{free_port()}"
        self._spawn("etcd", _etcd_args(self.state_dir / "etcd", etcd_url))
        self._wait("etcd", lambda: _etcd_healthy(etcd_url))
        server = f"https://127.0.0.1:{free_port()}"
        self._spawn("kube-apiserver", _apiserver_args(self.pki, server, etcd_url))
        self._wait("kube-apiserver", lambda: _ready(server, self.pki))
        config = self._write_kubeconfig(server)
        if binary("kwok").is_file():
            _prepare_fake_node(server, self.pki)
        for component in OPTIONAL:
            if binary(component).is_file():
                self._spawn(component, _controller_args(component, config, self.pki))
        cluster = LocalCluster(self.state_dir, server, config, dict(self.pids))
        _save(cluster)
        return cluster

    def _spawn(self, component: str, args: list[str]) -> None:
        with open(self.logs / f"{component}.log", "ab") as log:
            proc = subprocess.Popen([str(binary(component)), *args], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    process_group=self.group)
        self.group = self.group or proc.pid
        self.pids[component] = proc.pid

    def _wait(self, component: str, ready: Callable[[], bool]) -> None:
        while not ready():
            log = self.logs / f"{component}.log"
            if not alive(self.pids[component]):
                raise LocalClusterError(f"{component} exited at start: {_last_line(log)}",
                                        hint=f"see {log}")
            if time.monotonic() > self.deadline:
                raise LocalClusterError(f"{component} was not ready in time", hint=f"see {log}")
            time.sleep(0.2)

    def _write_kubeconfig(self, server: str) -> Path:
        import yaml

        path = self.state_dir / "kubeconfig"
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(kubeconfig(self.pki, server, f"stackwright-{self.state_dir.name}")))
        return path


def _etcd_args(data_dir: Path, url: str) -> list[str]:
    # The peer port is never used by a one-member cluster; port 0 keeps it from colliding.
    return [f"--data-dir={data_dir}", f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}", "--listen-peer-urls=http://127.0.0.1:0",
            "--unsafe-no-fsync=true", "--log-level=warn"]


def _apiserver_args(pki: Pki, server: str, etcd_url: str) -> list[str]:
    port = server.rsplit(":", 1)[1]
    return [
        f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1", f"--secure-port={port}",
        # A loopback address cannot be published as the `kubernetes` service's endpoint.
        "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
        f"--cert-dir={pki.folder}",
        f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}", "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_RANGE}",
        "--allow-privileged=true",
        # As envtest: no pod waits for a `default` service account to be made first.
        "--disable-admission-plugins=ServiceAccount",
    ]


def _controller_args(component: str, config: Path, pki: Pki) -> list[str]:
    if component == "kwok":
        return [f"--kubeconfig={config}", f"--config={kwok_stages()}", "--manage-all-nodes=true",
                "--node-lease-duration-seconds=40", f"--cidr={POD_CIDR}"]
    common = [f"--kubeconfig={config}", f"--authentication-kubeconfig={config}",
              f"--authorization-kubeconfig={config}", "--bind-address=127.0.0.1",
              f"--secure-port={free_port()}", "--leader-elect=false"]
    if component == "kube-controller-manager":
        return [*common, f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}"]
    return common


def _prepare_fake_node(server: str, pki: Pki) -> None:
    """One node for the scheduler to bind Pods to; kwok plays its kubelet. kwok manages a
    node only while it holds the node's lease, and the lease a stopped kwok held stays
    taken for its 40 seconds after a restart: it is deleted first."""
    lease = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{FAKE_NODE}"
    code = _request(server, pki, "DELETE", lease)
    if code not in (200, 404):
        raise LocalClusterError(f"deleting the lease of {FAKE_NODE} answered HTTP {code}")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": FAKE_NODE,
        "labels": {"kubernetes.io/hostname": FAKE_NODE, "kubernetes.io/os": "linux",
                   "kubernetes.io/arch": "amd64", "type": "kwok"},
        "annotations": {"kwok.x-k8s.io/node": "fake"}}}
    code = _request(server, pki, "POST", "/api/v1/nodes", node)
    if code not in (201, 409):
        raise LocalClusterError(f"creating the fake node {FAKE_NODE} answered HTTP {code}")


def _ssl_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


def _request(server: str, pki: Pki, method: str, path: str, body: object = None) -> int:
    """The HTTP status of one admin request to the API server (0 when it does not answer)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{server}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5, context=_ssl_context(pki)) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _ready(server: str, pki: Pki) -> bool:
    return _request(server, pki, "GET", "/readyz") == 200


def _etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(json.load(response).get("health") == "true")
    except (OSError, ValueError):
        return False


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(empty log)"


def stop(state_dir: Path) -> bool:
    """Stop the cluster of this folder; False if none was running. Data and certificates
    stay, so the next ``start`` finds the same objects."""
    cluster = _load(state_dir)
    if cluster is None:
        return False
    if cluster.kind is not None:
        was_running = cluster.kind in _kind_clusters()
        if was_running:
            _run_kind(["delete", "cluster", "--name", cluster.kind])
    else:
        was_running = any(alive(pid) for pid in cluster.pids.values())
        _stop_processes(cluster.pids)
    _info_path(state_dir).unlink()
    return was_running


def _stop_leftovers(state_dir: Path) -> None:
    """Processes of a cluster that is no longer whole (its API server died) are stopped
    before a new start takes fresh ports."""
    cluster = _load(state_dir)
    if cluster is not None and cluster.kind is None:
        stop(state_dir)


def _stop_processes(pids: dict[str, int]) -> None:
    """Each component in reverse start order (the API server shuts down in a second while
    etcd still answers, but hangs once etcd is gone), then SIGKILL to whatever is left of
    the process group. Nothing when none runs: the ids may belong to others by now."""
    if not any(alive(pid) for pid in pids.values()):
        return
    for pid in reversed(pids.values()):
        if alive(pid):
            terminate(pid)
    group = next(iter(pids.values()))
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start_kind(state_dir: Path) -> LocalCluster:
    """A kind cluster instead of the built-in one; needs a running Docker engine."""
    running = status(state_dir)
    if running is not None:
        return running
    _require_docker()
    if shutil.which("kind") is None:
        raise LocalClusterError("--kind needs the `kind` command on PATH")
    name = f"stackwright-{state_dir.name}"
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "kubeconfig"
    _run_kind(["create", "cluster", "--name", name, "--kubeconfig", str(config)])
    cluster = LocalCluster(state_dir, _kubeconfig_server(config), config, kind=name)
    _save(cluster)
    return cluster


def _require_docker() -> None:
    try:
        done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise LocalClusterError("--kind needs Docker, and the `docker` command is not installed") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[0]
        raise LocalClusterError(f"--kind needs a running Docker engine: {reason}")


def _run_kind(args: list[str]) -> str:
    done = subprocess.run(["kind", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise LocalClusterError(f"kind {' '.join(args[:2])} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def _kind_clusters() -> list[str]:
    if shutil.which("kind") is None:
        return []
    return _run_kind(["get", "clusters"]).split()


def _kubeconfig_server(path: Path) -> str:
    import yaml

    config = yaml.safe_load(path.read_text())
    return str(config["clusters"][0]["cluster"]["server"])
