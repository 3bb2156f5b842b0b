"""Choosing the state backend from a URL.

``postgresql://...`` (or ``postgres://...``) is the shared PostgreSQL store that lets
CI runners see each other's plans, approvals and applies; ``sqlite:///path`` is the
embedded store at ``path``; no URL is the embedded store at the default path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackwright.errors import StateError
from stackwright.state.store import StateStore

STATE_URL_ENV = "STACKWRIGHT_STATE_URL"


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
    if url is None or not isinstance(url, str) or not url.strip():
        raise StateError(
            "`state:` in stackwright.yaml needs a `url:` string",
            hint="state:\n  url: postgresql://user@host:5432/db  (or sqlite:///path)",
        )
    return url.strip()


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
                     root: Path | None = None) -> StateStore:
    """The store ``url`` names: PostgreSQL, SQLite at a path, or SQLite at ``default_path``.

    ``project`` keeps a project's tables apart in a shared PostgreSQL database.
    """
    if not url:
        from stackwright.state.sqlite import SqliteStateStore

        return SqliteStateStore(default_path)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("postgresql", "postgres"):
        from stackwright.state.postgres import PostgresStateStore, schema_for

        return PostgresStateStore(url, schema_for(project))
    if scheme == "sqlite" and url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from stackwright.state.sqlite import SqliteStateStore

        return SqliteStateStore(sqlite_path(url, default_path, root))
    from stackwright.state.postgres import shown_url

    raise StateError(
        f"unsupported state URL {shown_url(url)!r}",
        hint=f"use postgresql://user:password@host:5432/database or sqlite:///path "
        f"(in {STATE_URL_ENV} or `state: url:` in stackwright.yaml)",
    )
