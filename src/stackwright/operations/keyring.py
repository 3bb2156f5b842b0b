"""The keys that encrypt secrets at rest: in config, in state, in plan files.

A stack chooses its key with ``secrets:`` in ``stacks/<stack>.yaml``:

    secrets: passphrase                 # STACKWRIGHT_PASSPHRASE, scrypt-derived
    secrets: {age: [age1..., age1...]}  # each team member decrypts with their own age key
    secrets: awskms://alias/stackwright # AWS KMS (?region=...&endpoint=... optional)
    secrets: local                      # a random key in .stackwright/secrets.key

Without ``secrets:`` it is ``passphrase`` when ``STACKWRIGHT_PASSPHRASE`` is set, else
``local``: zero configuration on a laptop, shareable between CI and laptops with a
passphrase.

Every ciphertext names the kind of key that made it (``age:...``, ``passphrase:...``),
so one ``Keyring`` opens anything the project holds, whichever key each stack uses or
used before a rotation; only sealing depends on the stack.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stackwright.dataclass_methods import Compared
from stackwright.errors import StackwrightError
from stackwright.program.project import Project, stack_settings

PASSPHRASE_ENV = "STACKWRIGHT_PASSPHRASE"
AGE_IDENTITY_ENV = "STACKWRIGHT_AGE_IDENTITY"
"""Path of the age identity file (``age-keygen -o key.txt``) that opens age secrets."""
KEY_FILE = "secrets.key"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
"""Costly enough to slow guessing a passphrase, cheap enough for every CLI run (~0.1s)."""


class SecretsError(StackwrightError):
    """A secret cannot be encrypted or decrypted: wrong or missing key, altered ciphertext."""


class Cipher(Protocol):
    """One key: seals bytes into text and opens that text again."""

    scheme: str

    def seal(self, plain: bytes) -> str: ...

    def open(self, payload: str) -> bytes: ...


KEY_PROVIDERS: dict[str, str] = {"awskms": "stackwright.providers.aws.kms_key:KmsKey"}
"""Key schemes implemented outside this module, imported on first use (so that boto3
stays under providers.aws and out of commands that never meet such a key)."""


AEAD_PREFIX = "v2."
"""Ciphertexts sealed with AES-256-GCM start with it; older ones are Fernet tokens
(``gAAAA...``), which are still opened."""
_NONCE = 12


# Every command loads this module's classes: their methods are written, not generated
# (see stackwright.dataclass_methods); they behave as the ``@dataclass`` they are declared.


@dataclass(init=False, repr=False, eq=False)
class FernetKey(Compared):
    """A key in Fernet's format (the local key file, or one derived from a passphrase),
    several during a rotation (newest first: the first seals, any opens). New ciphertexts
    are AES-256-GCM under a key derived from it with HKDF: one call to open, where a
    Fernet token (AES-128-CBC with HMAC-SHA256, still opened) takes a dozen objects,
    which a preview of many secrets felt."""

    scheme: str
    load: Callable[[bool], bytes | list[bytes]]
    """Called with True when sealing: a key that does not exist yet may be made then."""
    hint: str
    _keys: list[bytes] | None = None
    _aeads: list[Any] | None = None
    _fernet: Any = None

    def __init__(self, scheme: str, load: Callable[[bool], bytes | list[bytes]], hint: str,
                 _keys: list[bytes] | None = None, _aeads: list[Any] | None = None, _fernet: Any = None) -> None:
        self.scheme = scheme
        self.load = load
        self.hint = hint
        self._keys = _keys
        self._aeads = _aeads
        self._fernet = _fernet

    def _raw(self, sealing: bool) -> list[bytes]:
        if self._keys is None:
            keys = self.load(sealing)
            self._keys = [keys] if isinstance(keys, bytes) else list(keys)
        return self._keys

    def _aead(self, sealing: bool) -> list[Any]:
        if self._aeads is None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            def derive(key: bytes) -> Any:
                kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"stackwright-secrets-aead-v2")
                return AESGCM(kdf.derive(base64.urlsafe_b64decode(key)))

            self._aeads = [derive(k) for k in self._raw(sealing)]
        return self._aeads

    def _fernets(self) -> Any:
        if self._fernet is None:
            from cryptography.fernet import Fernet, MultiFernet

            self._fernet = MultiFernet([Fernet(k) for k in self._raw(False)])
        return self._fernet

    def seal(self, plain: bytes) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead(True)[0].encrypt(nonce, plain, None)
        return AEAD_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, payload: str) -> bytes:
        opened = self._open_aead(payload) if payload.startswith(AEAD_PREFIX) else self._open_fernet(payload)
        if opened is None:
            raise SecretsError(f"cannot decrypt a secret with the {self.scheme} key: the key is not "
                               "the one it was encrypted with, or the ciphertext was altered",
                               hint=self.hint)
        return opened

    def _open_aead(self, payload: str) -> bytes | None:
        from cryptography.exceptions import InvalidTag

        try:
            data = base64.urlsafe_b64decode(payload[len(AEAD_PREFIX):])
        except ValueError:
            return None
        for aead in self._aead(False):
            try:
                return bytes(aead.decrypt(data[:_NONCE], data[_NONCE:], None))
            except (InvalidTag, ValueError):
                continue
        return None

    def _open_fernet(self, payload: str) -> bytes | None:
        from cryptography.fernet import InvalidToken

        try:
            return bytes(self._fernets().decrypt(payload.encode("ascii")))
        except (InvalidToken, UnicodeEncodeError):
            return None


def passphrase_key(project: Project, variable: str = PASSPHRASE_ENV) -> FernetKey:
    def load(sealing: bool) -> bytes:
        passphrase = os.environ.get(variable)
        if not passphrase:
            raise SecretsError(f"this stack's secrets need a passphrase and {variable} is not set",
                               hint=f"export {variable}=...")
        return derive_passphrase_key(passphrase, project.name)

    return FernetKey("passphrase", load, f"set {variable} to the passphrase the secrets were "
                     "encrypted with")


@functools.lru_cache(maxsize=16)
def derive_passphrase_key(passphrase: str, project_name: str) -> bytes:
    """A key every machine derives alike from the same passphrase: the salt is the
    project's name, so one passphrase gives different keys in different projects.
    Remembered for the process: `stackwright run` opens each stack's keys anew, and
    deriving takes ~0.1 s."""
    salt = hashlib.sha256(b"stackwright-plan-secrets:" + project_name.encode()).digest()
    raw = hashlib.scrypt(passphrase.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                         maxmem=64 * 1024 * 1024, dklen=32)
    return base64.urlsafe_b64encode(raw)


def local_key(project: Project) -> FernetKey:
    path = project.state_dir / KEY_FILE
    return FernetKey("local", lambda sealing: _key_file(path, sealing), f"the key is {path}; restore it, or "
                     f"set {PASSPHRASE_ENV} if the secrets were encrypted with a passphrase")


def _key_file(path: Path, create: bool = False) -> list[bytes]:
    """The keys, newest first (one a line; a rotation adds one, then drops the old), made
    when first needed to seal; a missing key file never opens anything."""
    if not path.exists() and not create:
        raise SecretsError(f"the local key {path} is missing, so the secrets it encrypted cannot be read",
                           hint=f"restore it from a backup, or set {PASSPHRASE_ENV} if the secrets "
                           "were encrypted with a passphrase")
    if not path.exists():
        write_key_file(path, [new_key()], replace=False)
    keys = path.read_bytes().split()
    if not keys or not all(valid_key(key) for key in keys):
        raise SecretsError(f"{path} does not hold a valid key", hint=f"restore it; or set {PASSPHRASE_ENV}")
    return keys


def new_key() -> bytes:
    """32 random bytes in Fernet's key format (URL-safe base64)."""
    return base64.urlsafe_b64encode(os.urandom(32))


def valid_key(key: bytes) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key)) == 32
    except ValueError:
        return False


def write_key_file(path: Path, keys: list[bytes], replace: bool = True) -> None:
    """Written to a private temporary file first and linked (or renamed) into place, so
    that a concurrent run never reads half a key, and, unless ``replace``, never loses
    a key another run already used."""
    import tempfile  # here, not at the top: only writing a key needs it, every command loads this module

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, b"\n".join(keys) + b"\n")
        os.fsync(handle)
        os.close(handle)
        if replace:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def rotated_local_keys(project: Project) -> list[bytes]:
    """A new local key followed by the project's keys (none when it has no key file
    yet), not written: a rotation seals with the first and opens with any of them, and
    writes them (``write_key_file``) before anything they sealed is stored."""
    path = project.state_dir / KEY_FILE
    return [new_key(), *(_key_file(path) if path.exists() else [])]


def local_key_of(project: Project, keys: list[bytes]) -> FernetKey:
    """The local key as ``keys`` (newest first) will be once written."""
    path = project.state_dir / KEY_FILE
    return FernetKey("local", lambda sealing: keys, f"the key is {path}; restore it, or set {PASSPHRASE_ENV} "
                     "if the secrets were encrypted with a passphrase")


def drop_local_keys(project: Project, keep: int = 1) -> None:
    path = project.state_dir / KEY_FILE
    write_key_file(path, _key_file(path)[:keep])


def joined(first: FernetKey, *others: FernetKey) -> FernetKey:
    """A key that seals with ``first`` and opens what any of them sealed (a new
    passphrase, and the old one a rotation moves away from)."""
    def load(sealing: bool) -> list[bytes]:
        keys: list[bytes] = []
        for key in (first, *others):
            loaded = key.load(sealing)
            keys += [loaded] if isinstance(loaded, bytes) else loaded
        return keys

    return FernetKey(first.scheme, load, first.hint)


@dataclass(init=False, repr=False, eq=False)
class AgeKey(Compared):
    """age (X25519): seals to every recipient; opens with the caller's own identity."""

    recipients: tuple[str, ...]
    scheme: str = "age"

    def __init__(self, recipients: tuple[str, ...], scheme: str = "age") -> None:
        self.recipients = recipients
        self.scheme = scheme

    def seal(self, plain: bytes) -> str:
        import pyrage

        if not self.recipients:
            raise SecretsError("`secrets: {age: [...]}` lists no recipients",
                               hint="add the team's age public keys (age1...)")
        try:
            keys = [pyrage.x25519.Recipient.from_str(r) for r in self.recipients]
        except pyrage.RecipientError as exc:
            raise SecretsError(f"invalid age recipient: {exc}", hint="age recipients start with age1") from None
        return base64.b64encode(pyrage.encrypt(plain, keys)).decode("ascii")

    def open(self, payload: str) -> bytes:
        import pyrage

        try:
            return bytes(pyrage.decrypt(base64.b64decode(payload, validate=True), _age_identities()))
        except (pyrage.DecryptError, ValueError):
            raise SecretsError("cannot decrypt a secret with your age identity: you are not one of "
                               "its recipients, or the ciphertext was altered",
                               hint="ask someone who can to run `stackwright secrets rotate` with "
                               "your public key added") from None


def _age_identities() -> list[Any]:
    import pyrage

    path = os.environ.get(AGE_IDENTITY_ENV)
    if not path:
        raise SecretsError(f"this stack's secrets are encrypted with age and {AGE_IDENTITY_ENV} is not set",
                           hint=f"export {AGE_IDENTITY_ENV}=~/.config/age/key.txt (made by age-keygen)")
    try:
        lines = Path(path).expanduser().read_text().splitlines()
        return [pyrage.x25519.Identity.from_str(line.strip()) for line in lines
                if line.strip().startswith("AGE-SECRET-KEY-")]
    except (OSError, pyrage.IdentityError) as exc:
        raise SecretsError(f"cannot read the age identity {path}: {exc}",
                           hint=f"{AGE_IDENTITY_ENV} must name an age-keygen identity file") from None


@dataclass(init=False, repr=False, eq=False)
class KeySpec(Compared):
    """What ``secrets:`` in a stack file says, parsed."""

    scheme: str
    recipients: tuple[str, ...] = ()
    url: str = ""

    def __init__(self, scheme: str, recipients: tuple[str, ...] = (), url: str = "") -> None:
        self.scheme = scheme
        self.recipients = recipients
        self.url = url

    def text(self) -> str:
        if self.scheme == "age":
            return "age: " + ", ".join(self.recipients)
        return self.url or self.scheme


def parse_spec(raw: Any, where: str = "secrets:") -> KeySpec:
    """``local``, ``passphrase``, ``awskms://...`` or ``{age: [recipients]}``."""
    if raw is None:
        return KeySpec("passphrase" if os.environ.get(PASSPHRASE_ENV) else "local")
    if isinstance(raw, str) and raw in ("local", "passphrase"):
        return KeySpec(raw)
    if isinstance(raw, str) and raw.startswith("awskms://"):
        return KeySpec("awskms", url=raw)
    if isinstance(raw, Mapping) and list(raw) == ["age"]:
        recipients = raw["age"] if isinstance(raw["age"], list) else [raw["age"]]
        return KeySpec("age", recipients=tuple(str(r) for r in recipients))
    raise SecretsError(f"{where} {raw!r} is not a key",
                       hint="use local, passphrase, awskms://alias/NAME or {age: [age1...]}")


def stack_spec(project: Project, stack: str) -> KeySpec:
    raw = stack_settings(project, stack).get("secrets")
    if raw is None:  # most stacks: no file name to work out (`run` does this per stack)
        return parse_spec(None)
    return parse_spec(raw, f"{project.relative(project.stack_file(stack))}: secrets:")


@dataclass(init=False, repr=False, eq=False)
class Keyring(Compared):
    """Seals with the stack's key; opens whatever kind of key a ciphertext names.

    Keys are loaded on first use: a stack with no secrets never needs one. Opened
    values are remembered, so that reading state twice costs one decryption.
    """

    project: Project
    spec: KeySpec
    _ciphers: dict[str, Cipher] = field(default_factory=dict)
    _opened: dict[str, bytes] = field(default_factory=dict)

    def __init__(self, project: Project, spec: KeySpec, _ciphers: dict[str, Cipher] | None = None,
                 _opened: dict[str, bytes] | None = None) -> None:
        self.project = project
        self.spec = spec
        self._ciphers = {} if _ciphers is None else _ciphers
        self._opened = {} if _opened is None else _opened

    @classmethod
    def for_stack(cls, project: Project, stack: str | None) -> Keyring:
        return cls(project, stack_spec(project, stack) if stack else parse_spec(None))

    def use(self, cipher: Cipher) -> None:
        """Seal and open ``cipher.scheme`` ciphertexts with ``cipher`` (a rotation's new key)."""
        self._ciphers[cipher.scheme] = cipher

    def seal(self, plain: bytes) -> str:
        cipher = self._sealer()
        token = f"{cipher.scheme}:{cipher.seal(plain)}"
        self._opened[token] = plain
        return token

    def open(self, token: str) -> bytes:
        plain = self._opened.get(token)
        if plain is None:
            scheme, sep, payload = token.partition(":")
            if not sep:
                raise SecretsError("a ciphertext names no key", hint="it was altered; restore it")
            plain = self._opener(scheme).open(payload)
            self._opened[token] = plain
        return plain

    def _sealer(self) -> Cipher:
        if self.spec.scheme == "age":
            return AgeKey(self.spec.recipients)
        if self.spec.scheme == "awskms":
            return self._provided("awskms", self.spec.url)
        return self._opener(self.spec.scheme)

    def _opener(self, scheme: str) -> Cipher:
        if scheme not in self._ciphers:
            if scheme == "local":
                self._ciphers[scheme] = local_key(self.project)
            elif scheme == "passphrase":
                self._ciphers[scheme] = passphrase_key(self.project)
            elif scheme == "age":
                self._ciphers[scheme] = AgeKey(self.spec.recipients)
            elif scheme in KEY_PROVIDERS:
                self._ciphers[scheme] = self._provided(scheme, self.spec.url if self.spec.scheme == scheme else "")
            else:
                raise SecretsError(f"a ciphertext names an unknown key kind {scheme!r}",
                                   hint="it was altered, or made by a newer Stackwright")
        return self._ciphers[scheme]

    def _provided(self, scheme: str, url: str) -> Cipher:
        module, _, name = KEY_PROVIDERS[scheme].partition(":")
        factory: Callable[[str], Cipher] = getattr(importlib.import_module(module), name)
        return factory(url)
