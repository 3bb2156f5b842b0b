"""What ``stackwright.yaml``, ``stacks/<stack>.yaml`` and ``stackwright-workspace.yaml``
may hold: pydantic models that forbid unknown keys, so that a misspelled key is an error
instead of a setting silently ignored.

Importing pydantic and building these models costs tens of milliseconds, so this module
is imported only when a file's content has not been checked before
(``project_files.check``). The models are strict: a value the code reads later is of
exactly the type declared here, with no conversion that the unchecked fast path would
miss. Sections that a higher layer owns are declared here as mappings and checked in full
by their owner's model (``environments:`` and ``groups:`` by
``workflow.environment_schema``).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

Text = Annotated[str, Field(min_length=1)]


class FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StateSettings(FileModel):
    """``state:``: where the stack's state lives and whether it may be written."""

    url: str | None = None
    read_only: bool = False


class ProjectFile(FileModel):
    """``stackwright.yaml``."""

    name: str
    main: str = "__main__.py"
    description: str = ""
    state: StateSettings | None = None
    environments: dict[str, dict[str, Any] | None] | None = None
    groups: dict[str, list[str]] | None = None
    gitops: dict[str, Any] | None = None
    """Checked in full by the gitops layer's own model (``gitops.settings``)."""
    web: dict[str, Any] | None = None
    """Checked in full by the web view's own model (``web.settings.WebSection``)."""


class PausedSection(FileModel):
    """``paused:``, written by `stackwright env pause`: what `env resume` puts back."""

    note: Any = None
    at: Any = None
    by: Any = None
    values: dict[str, Any] = Field(default_factory=dict)
    absent: list[str] = Field(default_factory=list)


class StackFile(FileModel):
    """``stacks/<stack>.yaml``: the program's free-form ``config:`` and the settings
    Stackwright itself reads."""

    config: dict[str, Any] | None = None
    environment: str | None = None
    secrets: str | dict[str, Any] | None = None
    """local, passphrase, awskms://..., or {age: [recipients]} (checked by operations.keyring)."""
    paused: PausedSection | None = None


class WorkspaceStack(FileModel):
    name: Text
    depends_on: list[Text] = Field(default_factory=list)


class WorkspaceProject(FileModel):
    path: Text
    """The project's folder, relative to the workspace file."""
    stacks: Literal["*"] | list[Text | WorkspaceStack] | None = None
    """Every ``stacks/*.yaml`` (``"*"``, the default), or a list of names and entries."""
    depends_on: list[Text] = Field(default_factory=list)
    """``project/stack`` names every stack of this project depends on."""


class WorkspaceFile(FileModel):
    """``stackwright-workspace.yaml``."""

    projects: list[WorkspaceProject]
    python_path: list[Text] = Field(default_factory=list)


def strict_model(cls: type[Any], exclude: tuple[str, ...] = ()) -> type[BaseModel]:
    """A strict, extra-forbidding pydantic model with the fields of the dataclass ``cls``
    but ``exclude``: the dataclass stays the one definition (and is built without pydantic
    at run time), the model checks a file against it."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.name in exclude:
            continue
        if item.default_factory is not dataclasses.MISSING:
            fields[item.name] = (hints[item.name], Field(default_factory=item.default_factory))
        else:
            default = ... if item.default is dataclasses.MISSING else item.default
            fields[item.name] = (hints[item.name], default)
    model: type[BaseModel] = create_model(cls.__name__, __base__=FileModel, **fields)
    return model


def core_schema(model: type[BaseModel]) -> Any:
    """``model``'s pydantic-core schema as plain data (JSON-able): what pydantic-core
    validates with, less what only building the model's value needs (the model classes,
    default factories, serializers). Every model here shares ``FileModel``'s config, so
    a model's inner fields validate the same under ``CORE_CONFIG`` given once."""
    return _plain(model.__pydantic_core_schema__)


CORE_CONFIG = {"extra_fields_behavior": "forbid", "strict": True}


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "model":
            return _plain(node["schema"])
        out = {key: _plain(value) for key, value in node.items()
               if key not in ("serialization", "cls", "metadata", "default_factory")}
        if "default_factory" in node:
            out["default"] = None  # the value is not kept: only whether the file fits
        return out
    if isinstance(node, (list, tuple)):
        return [_plain(item) for item in node]
    return node
