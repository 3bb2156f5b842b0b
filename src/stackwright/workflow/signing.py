"""SSH signatures of plan hashes, in git's model: ``ssh-keygen -Y sign`` / ``-Y verify``.

A signature is an armored SSHSIG blob (OpenSSH's PROTOCOL.sshsig) over the plan hash
(its 64 hex digits, nothing else) in the namespace ``stackwright-plan``, so that

    printf %s HASH | ssh-keygen -Y verify -f allowed_signers -I alice@example.com \\
        -n stackwright-plan -s approval.sig

checks what Stackwright checks. Keys are Ed25519; which key belongs to whom is the
repository's ``allowed_signers`` file, in the format git uses for
``gpg.ssh.allowedSignersFile``: ``principals [options] keytype base64-key [comment]``.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import os
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackwright.errors import StackwrightError

NAMESPACE = "stackwright-plan"
SIGNERS_FILE = "allowed_signers"
SIGNING_KEY_ENV = "STACKWRIGHT_SIGNING_KEY"
_MAGIC = b"SSHSIG"
_BEGIN, _END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"
_ED25519 = "ssh-ed25519"


class SigningError(StackwrightError):
    """No usable signing key, or an allowed_signers file that cannot be read."""


class BadSignature(StackwrightError):
    """A signature that does not verify; the message says why, for the refusal."""


# --- the SSH wire format ------------------------------------------------------------------


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_strings(blob: bytes, count: int, offset: int = 0) -> tuple[list[bytes], int]:
    out = []
    for _ in range(count):
        if offset + 4 > len(blob):
            raise BadSignature("the signature is truncated")
        (size,) = struct.unpack(">I", blob[offset:offset + 4])
        offset += 4
        if offset + size > len(blob):
            raise BadSignature("the signature is truncated")
        out.append(blob[offset:offset + size])
        offset += size
    return out, offset


def public_blob(raw_public: bytes) -> bytes:
    """An Ed25519 public key as SSH writes it: ``string "ssh-ed25519", string key``."""
    return _string(_ED25519.encode()) + _string(raw_public)


def fingerprint(blob: bytes) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _signed_data(message: bytes, namespace: str) -> bytes:
    return (_MAGIC + _string(namespace.encode()) + _string(b"") + _string(b"sha512")
            + _string(hashlib.sha512(message).digest()))


# --- signing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key read from an OpenSSH key file."""

    path: Path
    private: Any

    @property
    def blob(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return public_blob(self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, message: bytes, namespace: str = NAMESPACE) -> str:
        """The armored SSHSIG signature of ``message``."""
        raw = self.private.sign(_signed_data(message, namespace))
        body = (_MAGIC + struct.pack(">I", 1) + _string(self.blob) + _string(namespace.encode())
                + _string(b"") + _string(b"sha512") + _string(_string(_ED25519.encode()) + _string(raw)))
        text = base64.b64encode(body).decode()
        lines = [text[i:i + 70] for i in range(0, len(text), 70)]
        return "\n".join([_BEGIN, *lines, _END]) + "\n"


def signing_key_path(explicit: str | None, use_git: bool = True) -> Path | None:
    """``--key``, else ``STACKWRIGHT_SIGNING_KEY``, else git's ``user.signingkey``
    (a path; a ``.pub`` path names the private key beside it)."""
    chosen = explicit or os.environ.get(SIGNING_KEY_ENV) or (_git_signing_key() if use_git else "")
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    return path.with_suffix("") if path.suffix == ".pub" else path


def _git_signing_key() -> str:
    try:
        found = subprocess.run(["git", "config", "user.signingkey"], capture_output=True,
                               text=True, timeout=2).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return "" if found.startswith(("key::", "ssh-")) else found


def load_signing_key(path: Path) -> SigningKey:
    """The Ed25519 key at ``path`` (an unencrypted OpenSSH private key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    try:
        private = load_ssh_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise SigningError(f"cannot read the signing key {path}: {exc.strerror}",
                           hint=f"pass --key PATH or set {SIGNING_KEY_ENV}") from None
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{path} is not a usable OpenSSH private key: {exc}",
                           hint="use an unencrypted ed25519 key (ssh-keygen -t ed25519), or load it "
                           "into a file only you can read") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningError(f"{path} is not an Ed25519 key", hint="make one with ssh-keygen -t ed25519")
    return SigningKey(path, private)


# --- verifying ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    """One line of allowed_signers: who may sign with which key."""

    principals: tuple[str, ...]
    namespaces: tuple[str, ...] | None
    blob: bytes
    line: int

    def names(self, identity: str) -> bool:
        return any(fnmatch.fnmatchcase(identity, p) for p in self.principals)

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or any(fnmatch.fnmatchcase(namespace, n) for n in self.namespaces)


def read_signers(path: Path) -> list[Signer]:
    """The signers of an allowed_signers file; a malformed line is an error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SigningError(f"cannot read {path}: {exc.strerror}") from None
    signers = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            signers.append(_signer(line, path, number))
    return signers


def _signer(line: str, path: Path, number: int) -> Signer:
    parts = line.split()
    namespaces: tuple[str, ...] | None = None
    index = 1
    while index < len(parts) and not parts[index].startswith(("ssh-", "ecdsa-", "sk-")):
        option = parts[index]
        if option.lower().startswith("namespaces="):
            namespaces = tuple(option.split("=", 1)[1].strip('"').split(","))
        index += 1
    if index + 1 >= len(parts):
        raise SigningError("an allowed_signers line needs principals, a key type and a key",
                           file=str(path), line=number,
                           hint='e.g. alice@example.com namespaces="stackwright-plan" ssh-ed25519 AAAA...')
    try:
        blob = base64.b64decode(parts[index + 1], validate=True)
    except binascii.Error:
        raise SigningError("the key is not base64", file=str(path), line=number) from None
    return Signer(tuple(parts[0].split(",")), namespaces, blob, number)


def find_signers_file(start: Path, workspace_file: Callable[[], Path | None] | None = None) -> Path | None:
    """The ``allowed_signers`` that counts for the project in folder ``start``.

    Inside a git repository: in ``start`` or the nearest parent that has one, up to the
    repository's root (the file is reviewed with the code). Outside any repository no
    folder above the project's is known to be the team's, and one may be writable by
    others (``/tmp``): only ``start`` counts, then the folder of the workspace file that
    lists the project (``workspace_file``, asked only then), when that folder, the
    workspace file and its ``allowed_signers`` all belong to the project folder's owner.
    """
    folders = (start, *start.parents)
    if in_repository(start):
        for folder in folders:
            if (folder / SIGNERS_FILE).is_file():
                return folder / SIGNERS_FILE
            if (folder / ".git").exists():
                return None
    if (start / SIGNERS_FILE).is_file():
        return start / SIGNERS_FILE
    found = workspace_file() if workspace_file is not None else None
    if found is not None:
        candidate = found.parent / SIGNERS_FILE
        if candidate.is_file() and _same_owner(start, found.parent, found, candidate):
            return candidate
    return None


def in_repository(start: Path) -> bool:
    """Whether ``start`` is in a git repository (a ``.git`` in it or a parent)."""
    return any((folder / ".git").exists() for folder in (start, *start.parents))


def ignored_signers_file(start: Path) -> Path | None:
    """The nearest ``allowed_signers`` above ``start``, for saying why it is not used
    when ``find_signers_file`` finds none."""
    return next((folder / SIGNERS_FILE for folder in start.parents if (folder / SIGNERS_FILE).is_file()), None)


def _same_owner(first: Path, *others: Path) -> bool:
    try:
        owner = first.stat().st_uid
        return all(other.stat().st_uid == owner for other in others)
    except OSError:
        return False


def parse_signature(armored: str) -> tuple[bytes, str, bytes]:
    """(public key blob, namespace, raw Ed25519 signature) of an armored SSHSIG."""
    text = armored.strip()
    if not (text.startswith(_BEGIN) and text.endswith(_END)):
        raise BadSignature("it is not an SSH signature")
    try:
        body = base64.b64decode("".join(text[len(_BEGIN):-len(_END)].split()), validate=True)
    except binascii.Error:
        raise BadSignature("it is not an SSH signature") from None
    if body[:6] != _MAGIC or body[6:10] != struct.pack(">I", 1):
        raise BadSignature("it is not a version 1 SSH signature")
    (key, namespace, _, algorithm, signature), _ = _read_strings(body, 5, 10)
    (kind, raw), _ = _read_strings(signature, 2)
    if kind != _ED25519.encode() or algorithm != b"sha512":
        raise BadSignature("only ssh-ed25519 signatures over SHA-512 are accepted")
    return key, namespace.decode(errors="replace"), raw


def verify(armored: str, message: bytes, identity: str, signers: list[Signer],
           namespace: str = NAMESPACE) -> str:
    """The fingerprint of the key that signed ``message`` as ``identity``, or
    BadSignature: unsigned, another namespace, a key not listed for ``identity``, or a
    signature that does not match (forged, or over another plan)."""
    blob, raw = _parse_in(armored, namespace)
    if not any(s.blob == blob and s.names(identity) and s.allows(namespace) for s in signers):
        raise BadSignature(f"key {fingerprint(blob)} is not listed for {identity} in {SIGNERS_FILE}")
    _check(blob, raw, message, namespace)
    return fingerprint(blob)


def signing_fingerprint(armored: str, message: bytes, namespace: str = NAMESPACE) -> str:
    """The fingerprint of the key that signed ``message``, whoever allowed_signers lists it
    for (if anyone), or BadSignature: another namespace, or a signature that does not match."""
    blob, raw = _parse_in(armored, namespace)
    _check(blob, raw, message, namespace)
    return fingerprint(blob)


def _parse_in(armored: str, namespace: str) -> tuple[bytes, bytes]:
    blob, signed_namespace, raw = parse_signature(armored)
    if signed_namespace != namespace:
        raise BadSignature(f"it was made for {signed_namespace!r}, not {namespace!r}")
    return blob, raw


def _check(blob: bytes, raw: bytes, message: bytes, namespace: str) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    (_, key), _ = _read_strings(blob, 2)
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(raw, _signed_data(message, namespace))
    except (InvalidSignature, ValueError):
        raise BadSignature("the signature does not match this plan (forged, or made for another)") from None
