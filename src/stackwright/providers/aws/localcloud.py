"""The local cloud: one moto server per user and machine, on 127.0.0.1, in the background.

Its pid, port and log live in a per-user folder (``home()``), so that every project and
workspace on the machine (and ``endpoint: local`` in any stack's config) finds the same
emulator, and several projects' stacks can be up on it side by side. The server is
moto patched by ``emulator`` (CloudFormation exports and imports through change sets,
one OIDC issuer per EKS cluster). Everything it holds is in memory: stopping or
restarting it loses every resource.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from stackwright.emulator_endpoints import EMULATOR_CREDENTIALS
from stackwright.errors import StackwrightError
from stackwright.providers.processes import alive, free_port, port_free, terminate

DEFAULT_PORT = 4599
LOCAL_CREDENTIALS = EMULATOR_CREDENTIALS


@dataclass
class LocalCloud:
    pid: int
    port: int
    log: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


HOME_ENV = "STACKWRIGHT_LOCAL_CLOUD_HOME"


def home() -> Path:
    """Where the running local cloud is recorded: ``$STACKWRIGHT_LOCAL_CLOUD_HOME``, else
    ``$XDG_CACHE_HOME/stackwright/local-cloud``, else ``~/.cache/stackwright/local-cloud``."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "stackwright" / "local-cloud"


def _info_path(folder: Path | None) -> Path:
    return (folder or home()) / "local-cloud.json"


def status(folder: Path | None = None) -> LocalCloud | None:
    """The running local cloud of this user (recorded in ``folder``, default ``home()``), or None."""
    path = _info_path(folder)
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    cloud = LocalCloud(pid=int(info["pid"]), port=int(info["port"]), log=str(info["log"]))
    return cloud if alive(cloud.pid) and is_serving(cloud.url) else None


def start(folder: Path | None = None, port: int | None = None, timeout: float = 30.0) -> LocalCloud:
    """Start the emulator in the background (or return the one already running)."""
    running = status(folder)
    if running is not None:
        return running
    state_dir = folder or home()
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or int(os.environ.get("STACKWRIGHT_LOCAL_CLOUD_PORT", DEFAULT_PORT))
    if not port_free(port):
        raise StackwrightError(
            f"port {port} on 127.0.0.1 is taken",
            hint="pass --port, or set STACKWRIGHT_LOCAL_CLOUD_PORT",
        )
    log = state_dir / "local-cloud.log"
    proc = spawn(port, log)
    cloud = LocalCloud(pid=proc.pid, port=port, log=str(log))
    _wait_serving(cloud, proc, timeout)
    warm_up(cloud.url)
    _info_path(state_dir).write_text(json.dumps({"pid": cloud.pid, "port": port, "log": str(log)}))
    return cloud


EMULATOR_ENV = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
"""AWS-managed IAM policies (AmazonEKSClusterPolicy...) exist in AWS; moto loads them
only when asked."""

WARM_SERVICES = {
    "sts": "get_caller_identity", "s3": "list_buckets", "dynamodb": "list_tables",
    "ecr": "describe_repositories", "route53": "list_hosted_zones", "sns": "list_topics",
    "cloudwatch": "list_dashboards", "iam": "list_roles", "ec2": "describe_vpcs",
    "eks": "list_clusters", "cloudformation": "list_stacks",
}


def spawn(port: int, log: Path) -> subprocess.Popen[bytes]:
    """The patched moto server (``emulator``) as a detached child process writing to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stackwright.providers.aws.emulator", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **EMULATOR_ENV},
        )


def warm_up(url: str) -> None:
    """moto loads each service on its first request, which takes seconds; pay that at
    start, in parallel, instead of inside the first `up`."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    def touch(service: str) -> None:
        client = cast(Any, boto3).client(service, endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id=LOCAL_CREDENTIALS["access_key_id"],
                              aws_secret_access_key=LOCAL_CREDENTIALS["secret_access_key"])
        getattr(client, WARM_SERVICES[service])()

    with ThreadPoolExecutor(len(WARM_SERVICES)) as pool:
        list(pool.map(touch, WARM_SERVICES))


def _wait_serving(cloud: LocalCloud, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not is_serving(cloud.url):
        if proc.poll() is not None:
            raise StackwrightError(f"the local cloud exited at start; see {cloud.log}")
        if time.monotonic() > deadline:
            proc.kill()
            raise StackwrightError(f"the local cloud did not answer within {timeout:.0f}s; see {cloud.log}")
        time.sleep(0.1)


def stop(folder: Path | None = None) -> bool:
    """Stop this user's local cloud; False if none was running."""
    path = _info_path(folder)
    if not path.exists():
        return False
    info = json.loads(path.read_text())
    pid = int(info["pid"])
    stopped = alive(pid)
    if stopped:
        terminate(pid)
    path.unlink()
    return stopped


def is_serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
