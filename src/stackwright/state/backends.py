"""Choosing the state backend from a URL.

``postgresql://...`` (or ``postgres://...``) is the shared PostgreSQL store that lets
CI runners see each other's plans, approvals and applies; ``s3://bucket/prefix`` keeps
the same in an S3 bucket; ``sqlite:///path`` is the embedded store at ``path``; no URL
is the embedded store at the default path.

Any of them opens read-only under ``STACKWRIGHT_STATE_READ_ONLY=1`` or
``state: {read_only: true}``: reads and previews work, and every write or lock attempt
fails in the store itself (``ReadOnlyStateError``), whichever command asked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackwright.errors import StateError
from stackwright.state.store import StateStore

STATE_URL_ENV = "STACKWRIGHT_STATE_URL"
READ_ONLY_ENV = "STACKWRIGHT_STATE_READ_ONLY"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def state_url(settings: Mapping[str, Any]) -> str | None:
    """``STACKWRIGHT_STATE_URL``, else ``state: {url: ...}`` of the project file, else
    None (the embedded SQLite store)."""
    env = os.environ.get(STATE_URL_ENV, "").strip()
    if env:
        return env
    section = settings.get("state")
    if section is None:
        return None
    url = section.get("url") if isinstance(section, Mapping) else None
    if url is None and isinstance(section, Mapping) and "read_only" in section:
        return None
    if url is None or not isinstance(url, str) or not url.strip():
        raise StateError(
            "`state:` in stackwright.yaml needs a `url:` string",
            hint="state:\n  url: postgresql://user@host:5432/db  (or s3://bucket/prefix, sqlite:///path)",
        )
    return url.strip()


def state_read_only(settings: Mapping[str, Any] | None = None) -> bool:
    """``STACKWRIGHT_STATE_READ_ONLY`` (1/true/yes/on), else ``state: {read_only: ...}``."""
    env = os.environ.get(READ_ONLY_ENV, "").strip().lower()
    if env in _TRUE:
        return True
    if env not in _FALSE:
        raise StateError(f"{READ_ONLY_ENV}={env!r} is neither true nor false", hint=f"{READ_ONLY_ENV}=1")
    section = (settings or {}).get("state")
    flag = section.get("read_only", False) if isinstance(section, Mapping) else False
    if not isinstance(flag, bool):
        raise StateError("`state: read_only:` in stackwright.yaml must be true or false")
    return flag


def sqlite_path(url: str | None, default_path: Path, root: Path | None = None) -> Path:
    """The file a ``sqlite:///path`` URL (or no URL) names. As in SQLAlchemy,
    ``sqlite:///state.db`` is relative (to ``root``, the project folder, when given) and
    ``sqlite:////var/lib/state.db`` absolute."""
    if not url:
        return default_path
    path = Path(url[len("sqlite:///"):])
    if not path.is_absolute() and root is not None:
        path = root / path
    return path


def open_state_store(url: str | None, default_path: Path, project: str | None = None,
                     root: Path | None = None, read_only: bool = False) -> StateStore:
    """The store ``url`` names: PostgreSQL, S3, SQLite at a path, or SQLite at
    ``default_path``; read-only when asked or when ``STACKWRIGHT_STATE_READ_ONLY`` says so.

    ``project`` keeps a project's tables apart in a shared PostgreSQL database.
    """
    read_only = read_only or state_read_only()
    if not url:
        from stackwright.state.sqlite import SqliteStateStore

        return SqliteStateStore(default_path, read_only=read_only)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("postgresql", "postgres"):
        from stackwright.state.postgres import PostgresStateStore, schema_for

        return PostgresStateStore(url, schema_for(project), read_only=read_only)
    if scheme == "s3":
        from stackwright.state.s3 import S3StateStore

        return S3StateStore(url, read_only=read_only)
    if scheme == "sqlite" and url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from stackwright.state.sqlite import SqliteStateStore

        return SqliteStateStore(sqlite_path(url, default_path, root), read_only=read_only)
    from stackwright.state.postgres import shown_url

    raise StateError(
        f"unsupported state URL {shown_url(url)!r}",
        hint=f"use postgresql://user:password@host:5432/database, s3://bucket/prefix or sqlite:///path "
        f"(in {STATE_URL_ENV} or `state: url:` in stackwright.yaml)",
    )
