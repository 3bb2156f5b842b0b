"""Reading the project's YAML files and checking them against their schemas.

A file is parsed with PyYAML's C loader and checked against a pydantic model that forbids
unknown keys (``project_schema``); a mistake is a ``ProjectError`` naming the file, the
line of the offending key (from the parser's node marks) and, for an unknown key, the
known key it is closest to.

Importing PyYAML and pydantic costs more than the rest of a small command. So what a
check found is remembered: a file whose content (with the schema's own source) passed
before is neither parsed nor checked again; its data is read back from a JSON record
named by that digest, in the project's ``.stackwright/cache/checked/`` (beside the state,
so that only who can write the state can write it). Only passes are recorded, so a
mistake is reported every time, and editing the file or the schema checks it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import sys
import types
import typing
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.errors import ProjectError

Loc = tuple[int | str, ...]


@frozen_record
class Schema(FrozenCompared):
    """What a kind of file may hold: ``model`` imports and returns the pydantic model (so
    that pydantic loads only when needed); ``sources`` are the files that define it.

    Every command loads it: its methods are written, not generated (see
    stackwright.dataclass_methods); it behaves as ``@dataclass(frozen=True)``."""

    kind: str
    model: Callable[[], Any]
    sources: tuple[str, ...]
    fields_of: tuple[type, ...] = ()
    """Dataclasses whose fields the model takes (``strict_model``): their field
    declarations, not the whole text of their module, decide its compiled form."""

    def __init__(self, kind: str, model: Callable[[], Any], sources: tuple[str, ...],
                 fields_of: tuple[type, ...] = ()) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "fields_of", fields_of)


def _project_model() -> Any:
    from stackwright.program.project_schema import ProjectFile

    return ProjectFile


def _stack_model() -> Any:
    from stackwright.program.project_schema import StackFile

    return StackFile


def _workspace_model() -> Any:
    from stackwright.program.project_schema import WorkspaceFile

    return WorkspaceFile


SCHEMA_SOURCE = str(Path(__file__).with_name("project_schema.py"))
PROJECT_SCHEMA = Schema("project", _project_model, (SCHEMA_SOURCE,))
STACK_SCHEMA = Schema("stack", _stack_model, (SCHEMA_SOURCE,))
WORKSPACE_SCHEMA = Schema("workspace", _workspace_model, (SCHEMA_SOURCE,))


def parse_yaml(text: str | bytes, shown: str) -> Any:
    """The document as plain data; a syntax error names the file and line."""
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProjectError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=shown,
                           line=mark.line + 1 if mark else None) from None


def read_project_file(path: Path, shown: str, what: str) -> bytes:
    """The content of one of the project's files; one that cannot be read (a folder by
    that name, no permission) is a mistake the user fixes, naming the file."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise unreadable(exc, shown, what) from exc


def is_project_file(path: Path, what: str, shown: str | None = None) -> bool:
    """Whether ``path`` is there (as ``Path.is_file``, but something other than a file by
    that name, a folder, is a mistake naming it rather than no file at all). ``shown``
    names it in the error, by default relative to the working directory."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise unreadable(exc, shown or shown_path(path), what) from exc
    if stat.S_ISDIR(mode):
        raise _a_folder(shown or shown_path(path), what)
    return True


def unreadable(exc: OSError, shown: str, what: str) -> ProjectError:
    """``exc``, met reading ``what`` at ``shown``, in words."""
    if isinstance(exc, IsADirectoryError):
        return _a_folder(shown, what)
    if isinstance(exc, NotADirectoryError):
        return ProjectError(f"cannot read {what}: a folder on its path is a file", file=shown)
    reason = (exc.strerror or type(exc).__name__).lower()
    hint = "make it, and the folders above it, readable to this user" if isinstance(exc, PermissionError) else None
    return ProjectError(f"cannot read {what}: {reason}", file=shown, hint=hint)


def _a_folder(shown: str, what: str) -> ProjectError:
    return ProjectError(f"cannot read {what}: it is a folder", file=shown,
                        hint="put the file there instead of the folder")


def read_checked(path: Path, shown: str, schema: Schema, what: str,
                 records: Path | None = None) -> dict[str, Any]:
    """``path`` parsed and checked against ``schema`` (an empty file is an empty mapping),
    or the data recorded in the folder ``records`` when the same content passed before."""
    content = read_project_file(path, shown, what)
    record = _record_path(records, schema, content)
    recalled = _recall(record)
    if recalled is not None and "data" in recalled:
        data: dict[str, Any] = recalled["data"]
        return data
    data = parse_yaml(content, shown)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProjectError(f"{what} must be a mapping of keys to values", file=shown, line=1)
    if recalled is None:
        if (schema.kind, content) not in _PASSED:
            _validate(data, content, shown, schema)
            _PASSED.add((schema.kind, content))
        _record(record, {"data": data} if _is_json(data) else {})
    return data


_PASSED: set[tuple[str, bytes]] = set()
"""Contents that passed in this process: many stack files of a workspace are alike, and
its state may live where no records folder is (a database), so `run` validates each
content once."""


def check(data: Any, content: bytes, shown: str, schema: Schema, records: Path | None = None) -> None:
    """Raise a ``ProjectError`` unless ``data`` (parsed from ``content``) fits ``schema``."""
    if (schema.kind, content) in _PASSED:
        return
    record = _record_path(records, schema, content)
    if _recall(record) is None:
        _validate(data, content, shown, schema)
        _record(record, {})
    _PASSED.add((schema.kind, content))


def _validate(data: Any, content: bytes, shown: str, schema: Schema) -> None:
    if _fits_compiled(data, schema):
        return
    from pydantic import ValidationError

    model = schema.model()
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise problem(exc.errors(), model, content, shown) from None


def _fits_compiled(data: Any, schema: Schema) -> bool:
    """``data`` passes the schema's compiled form (``compiled_schemas``), checked by
    pydantic-core alone. False when it does not, or when there is no compiled form
    that is up to date: then the pydantic model checks it, and says what is wrong."""
    validator = _compiled(schema)
    if validator is None:
        return False
    from pydantic_core import ValidationError

    try:
        validator.validate_python(data)
    except ValidationError:
        return False
    return True


@cache
def _compiled(schema: Schema) -> Any:
    """The schema's pydantic-core validator, if its compiled form was made from the
    schema's sources as they are now, by this version of pydantic-core."""
    from stackwright.program import compiled_schemas

    entry = compiled_schemas.SCHEMAS.get(schema.kind)
    if entry is None or entry["digest"] != schema_digest(schema):
        return None
    import pydantic_core
    from pydantic_core import CoreConfig

    if pydantic_core.__version__ != compiled_schemas.PYDANTIC_CORE:
        return None
    return pydantic_core.SchemaValidator(entry["schema"], cast(CoreConfig, compiled_schemas.CONFIG))


def problem(errors: Sequence[Any], model: Any, content: bytes, shown: str) -> ProjectError:
    """The first mistake pydantic found, as one line and a hint; an unknown key first,
    because a misspelled key also makes the key it meant look missing."""
    error = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    loc: Loc = tuple(error["loc"])
    line = line_of(content, loc)
    where = dotted(model, loc)
    if error["type"] == "extra_forbidden":
        import difflib

        known = keys_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        parent = dotted(model, loc[:-1])
        return ProjectError(
            f"unknown key {str(loc[-1])!r}" + (f" in `{parent}`" if parent else ""),
            file=shown, line=line,
            hint=f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}")
    if error["type"] == "missing":
        return ProjectError(f"`{where}` is required", file=shown, line=line)
    got = repr(error.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return ProjectError(f"`{where}`: {error['msg'][0].lower()}{error['msg'][1:]}, not {got}",
                        file=shown, line=line)


# --- where a mistake is -----------------------------------------------------------------


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def line_index(content: bytes) -> dict[Loc, int]:
    """The line of every key and list item of the document, by its place in it."""
    import yaml

    lines: dict[Loc, int] = {}

    def walk(node: Any, loc: Loc) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*loc, key.value)] = key.start_mark.line + 1
                walk(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*loc, i)] = item.start_mark.line + 1
                walk(item, (*loc, i))

    walk(yaml.compose(content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), ())
    return lines


def line_of(content: bytes, loc: Loc) -> int:
    """The line of the key (or list item) ``loc`` leads to, as far as the document has it.
    Segments that are not in the document (pydantic's names for union members) are
    passed over."""
    lines = line_index(content)
    place: Loc = ()
    line = 1
    for segment in loc:
        if (*place, segment) in lines:
            place = (*place, segment)
            line = lines[place]
    return line


def dotted(model: Any, loc: Loc) -> str:
    """``loc`` as a user writes it (``projects[0].stacks``), without union member names."""
    out = ""
    annotation = model
    for segment in loc:
        annotation, place = _step(annotation, segment)
        if place:
            out += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if out else str(segment))
    return out


def keys_at(model: Any, loc: Loc) -> list[str]:
    """The keys the mapping at ``loc`` may hold, for "did you mean"."""
    annotation = model
    for segment in loc:
        annotation, _ = _step(annotation, segment)
    return sorted(_fields(annotation))


def _step(annotation: Any, segment: int | str) -> tuple[Any, bool]:
    """The type at ``segment`` inside ``annotation``, and whether the segment is a place
    in the document (not pydantic's name for the member of a union it tried)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        named = next((a for a in args if getattr(a, "__name__", None) == segment), None)
        if named is not None:
            return named, False
        for member in args:
            inner, place = _step(member, segment)
            if place and inner is not None:
                return inner, True
        return annotation, False
    if origin is dict:
        return args[1], True
    if origin is list:
        return (args[0], True) if isinstance(segment, int) else (annotation, False)
    return _fields(annotation).get(str(segment)), True


def _fields(annotation: Any) -> dict[str, Any]:
    """A model's field types; for a union, those of its model members."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        merged: dict[str, Any] = {}
        for member in typing.get_args(annotation):
            merged.update(_fields(member))
        return merged
    model_fields = getattr(annotation, "model_fields", None)
    if isinstance(model_fields, dict):
        return {name: info.annotation for name, info in model_fields.items()}
    return {}


# --- records of passes ------------------------------------------------------------------


def records_folder(root: Path) -> Path | None:
    """Where records of passes are kept for the project (or workspace) at ``root``: only
    where ``.stackwright/`` exists already (no command creates it just for this)."""
    state = root / ".stackwright"
    return state / "cache" if state.is_dir() else None


def _record_path(records: Path | None, schema: Schema, content: bytes) -> Path | None:
    if records is None:
        return None
    digest = hashlib.sha256(_schema_digest(schema.kind, schema.sources))
    digest.update(content)
    return records / "checked" / f"{digest.hexdigest()}.json"


def schema_digest(schema: Schema) -> str:
    """What a compiled schema was made from: the kind, the contents of its sources but
    the modules of ``fields_of``, and the field declarations of ``fields_of``."""
    modules = {sys.modules[cls.__module__].__file__ for cls in schema.fields_of}
    digest = hashlib.sha256(_schema_digest(schema.kind, tuple(s for s in schema.sources if s not in modules)))
    for cls in schema.fields_of:
        hints = typing.get_type_hints(cls)  # resolved: an alias edited elsewhere in the module counts
        for item in dataclasses.fields(cls):
            factory = getattr(item.default_factory, "__qualname__", None)
            default = None if item.default is dataclasses.MISSING else item.default
            digest.update(repr((item.name, hints[item.name], default, factory)).encode())
    return digest.hexdigest()


@cache
def _schema_digest(kind: str, sources: tuple[str, ...]) -> bytes:
    digest = hashlib.sha256(kind.encode())
    for source in sources:
        digest.update(Path(source).read_bytes())
    return digest.digest()


def _recall(record: Path | None) -> dict[str, Any] | None:
    """The record of an earlier pass; None when there is none. A record that cannot be
    read (cut short, altered) counts as none: the file is simply checked again."""
    if record is None:
        return None
    try:
        recalled = json.loads(record.read_bytes())
    except (OSError, ValueError):
        return None
    return recalled if isinstance(recalled, dict) else None


def _record(record: Path | None, value: dict[str, Any]) -> None:
    """Record a pass, atomically (another process may be reading). Records only save time:
    where the folder cannot be written (a read-only checkout), every run checks again."""
    if record is None:
        return
    import tempfile  # with shutil, bz2, lzma and random: only where a check is recorded

    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".record-", dir=record.parent)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(value, out)
        os.replace(temporary, record)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def _is_json(value: Any) -> bool:
    """True when JSON gives ``value`` back as it is (YAML can also hold dates, bytes...)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return value is None or isinstance(value, (str, int, bool))
