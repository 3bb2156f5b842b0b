"""HTTPS calls to a cluster as a kubeconfig's user or as a bearer token, for the tests
of the local cluster itself (the standard library's ssl, nothing of Stackwright's)."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class KubeApi:
    def __init__(self, kubeconfig: Path, token: str | None = None) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        self.server = cluster["server"]
        self.token = token
        self.context = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        if token is None:
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
                key.write_bytes(base64.b64decode(user["client-key-data"]))
                self.context.load_cert_chain(str(cert), str(key))

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def ok(self, method: str, path: str, body: object = None) -> Any:
        code, answer = self.call(method, path, body)
        assert code in (200, 201), f"{method} {path}: HTTP {code}: {answer}"
        return answer

    def wait_for(self, path: str, check: Callable[[Any], bool], timeout: float = 90.0) -> Any:
        """The object at ``path`` once ``check`` holds; fails with its last state."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.ok("GET", path)
            if check(current):
                return current
            assert time.monotonic() < deadline, f"{path} never got there: {current.get('status')}"
            time.sleep(0.5)
