"""Per-stack configuration (``stacks/<stack>.yaml``) and stack outputs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from stackwright.errors import ConfigError
from stackwright.model import context
from stackwright.model.output import Output, outputs_in, secret, use
from stackwright.model.values import Secret

T = TypeVar("T")
_MISSING: Any = object()


class Config:
    """Typed reads of the current stack's config, optionally under a namespace.

    ``Config()`` reads the top level of ``config:``; ``Config("aws")`` reads
    ``config: {aws: {...}}``.
    """

    def __init__(self, namespace: str | None = None) -> None:
        self._source = context.current().config
        self.namespace = namespace
        data: Any = self._source.data
        if namespace is not None:
            data = data.get(namespace, {}) if isinstance(data, Mapping) else {}
        self._data: Mapping[str, Any] = data if isinstance(data, Mapping) else {}

    def _key(self, key: str) -> str:
        return f"{self.namespace}.{key}" if self.namespace else key

    def _line(self, key: str) -> int | None:
        return self._source.lines.get(self._key(key))

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self._data or self._data[key] is None:
            file, line = context.user_frame()
            raise ConfigError(
                f"missing required config key {self._key(key)!r}"
                + (f" (required at {file}:{line})" if file else ""),
                file=self._source.file,
                hint=f"add it under `config:` in {self._source.file}",
            )
        return self._data[key]

    def _typed(self, key: str, tp: type[T], value: Any) -> T:
        if isinstance(value, Secret):
            raise ConfigError(f"config key {self._key(key)!r} is secret",
                              file=self._source.file, line=self._line(key),
                              hint=f"read it with config.require_secret({key!r}): an Output that stays secret")
        ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        if not ok:
            raise ConfigError(
                f"config key {self._key(key)!r} must be {tp.__name__}, got {value!r}",
                file=self._source.file, line=self._line(key), hint=self._text_hint(key, tp, value),
            )
        return value  # type: ignore[no-any-return]

    def _text_hint(self, key: str, tp: type, value: Any) -> str | None:
        """For a number or boolean where text is read: how to store it as text."""
        if tp is not str or not isinstance(value, (int, float, bool)):
            return None
        shown = json.dumps(value)
        return (f"quote it in {self._source.file} ({key}: '{shown}'), or set it with "
                f"`stackwright config set {self._key(key)} {shown} --string`")

    def get_str(self, key: str, default: str | None = None) -> str | None:
        value = self._data.get(key)
        return default if value is None else self._typed(key, str, value)

    def require_str(self, key: str) -> str:
        return self._typed(key, str, self.require(key))

    def get_int(self, key: str, default: int | None = None) -> int | None:
        value = self._data.get(key)
        return default if value is None else self._typed(key, int, value)

    def require_int(self, key: str) -> int:
        return self._typed(key, int, self.require(key))

    def get_float(self, key: str, default: float | None = None) -> float | None:
        value = self._data.get(key)
        return default if value is None else self._typed(key, float, value)

    def get_bool(self, key: str, default: bool | None = None) -> bool | None:
        value = self._data.get(key)
        return default if value is None else self._typed(key, bool, value)

    def require_bool(self, key: str) -> bool:
        return self._typed(key, bool, self.require(key))

    def get_object(self, key: str, tp: type[T] | None = None, default: Any = None) -> Any:
        """The value under ``key``, validated against ``tp`` (e.g. a pydantic model)."""
        if key not in self._data:
            return default
        return self._validate(key, tp, self._data[key]) if tp is not None else self._data[key]

    def require_object(self, key: str, tp: type[T] | None = None) -> Any:
        value = self.require(key)
        return self._validate(key, tp, value) if tp is not None else value

    def _validate(self, key: str, tp: Any, value: Any) -> Any:
        from pydantic import TypeAdapter, ValidationError

        try:
            return TypeAdapter(tp).validate_python(value)
        except ValidationError as exc:
            detail = exc.errors()[0]
            where = ".".join(str(p) for p in detail.get("loc", ()))
            path = self._key(key) + (f".{where}" if where else "")
            raise ConfigError(
                f"config key {path!r}: {detail['msg']}",
                file=self._source.file,
                line=self._source.lines.get(path) or self._line(key),
            ) from None

    def require_secret(self, key: str) -> Output[Any]:
        return secret(self.require(key))

    def get_secret(self, key: str) -> Output[Any] | None:
        value = self._data.get(key)
        return None if value is None else secret(value)


def export(name: str, value: Any) -> None:
    """Publish a stack output, shown by `stackwright outputs` and readable by other stacks."""
    ctx = context.current()
    ctx.exports[name] = value
    if ctx.derived:
        use(outputs_in(value))


def get_stack() -> str:
    return context.current().stack


def get_project() -> str:
    return context.current().project
