"""A folder of CloudFormation templates, deployed as it is: one stack per template the
environment lists, with that environment's parameters.

    templates = TemplateFolder("templates", folder=Path(__file__).parent / "templates",
                               parameters=sw.Config().require_object("templates"))

``parameters`` maps a template's name (its file name up to the first dot:
``vpc.cfn.yml`` is ``vpc``) to its parameters, or to a parameter file in the format
``aws cloudformation create-stack --parameters file://...`` reads (a JSON list of
``ParameterKey``/``ParameterValue``; a relative path starts where the template
folder is). Only the templates it names are deployed, so each
environment says which it has. Stacks are named ``<prefix>-<template>`` (prefix: the
stack's name). No order is given: the stacks are ordered by their templates' exports
and imports (``Export`` / ``Fn::ImportValue``) when the plan is made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import stackwright as sw
from stackwright.errors import ProgramError
from stackwright.model import context
from stackwright.model.values import Secret
from stackwright.providers.aws import cloudformation

SUFFIXES = (".yaml", ".yml", ".json", ".template")
DEFAULT_CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")


class TemplateFolder(sw.Component, type="stackwright:aws:TemplateFolder"):
    """``stacks`` holds each deployed template's ``cloudformation.Stack`` by template
    name; ``outputs`` each one's outputs."""

    def __init__(self, name: str, *, folder: str | Path, parameters: Mapping[str, Any],
                 prefix: str | None = None, capabilities: Sequence[str] = DEFAULT_CAPABILITIES,
                 tags: dict[str, str] | None = None, opts: sw.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        root = Path(folder)
        templates = find_templates(root)
        prefix = sw.get_stack() if prefix is None else prefix
        self.stacks: dict[str, cloudformation.Stack] = {}
        for template, given in parameters.items():
            path = templates.get(template)
            if path is None:
                raise _error(
                    f"template folder {name!r}: there is no template {template!r} in {root}",
                    hint=f"its templates: {', '.join(sorted(templates)) or 'none'}")
            self.stacks[template] = cloudformation.Stack(
                template, name=f"{prefix}-{template}", template=path.read_text(),
                parameters=_parameters(name, template, given, root), capabilities=list(capabilities),
                tags=dict(tags or {}))
        self.outputs = {template: stack.outputs for template, stack in self.stacks.items()}


def _error(message: str, hint: str | None = None) -> ProgramError:
    file, line = context.user_frame()
    return ProgramError(message, file=file, line=line, hint=hint)


def find_templates(folder: Path) -> dict[str, Path]:
    """The folder's templates by name: the file name up to its first dot."""
    if not folder.is_dir():
        raise _error(f"template folder {folder} does not exist",
                                  hint="give the folder that holds the templates")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in SUFFIXES:
            found.setdefault(path.name.split(".", 1)[0], path)
    return found


def _parameters(name: str, template: str, given: Any, folder: Path) -> dict[str, Any]:
    """Inline parameters, or a parameter file's, each as CloudFormation takes it."""
    if given is None:
        return {}
    if isinstance(given, Mapping):
        return {str(key): _parameter(name, template, str(key), value) for key, value in given.items()}
    if not isinstance(given, str):
        raise _error(
            f"template folder {name!r}: the parameters of {template!r} must be a mapping or the "
            f"path of a parameter file, not {type(given).__name__}")
    path = folder.parent / given
    try:
        listed = json.loads(path.read_text())
        return {str(p["ParameterKey"]): _parameter(name, template, str(p["ParameterKey"]), p["ParameterValue"])
                for p in listed}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise _error(
            f"template folder {name!r}: cannot read the parameter file {path} of {template!r}: {exc}",
            hint='a parameter file is a JSON list of {"ParameterKey": ..., "ParameterValue": ...}'
        ) from None


def _parameter(name: str, template: str, key: str, value: Any) -> Any:
    """A parameter's value as the text CloudFormation takes: a number or a boolean from
    YAML or JSON (``345600``, ``true``) written as text; a secret in config stays one."""
    if isinstance(value, Secret):
        return sw.secret(_parameter(name, template, key, value.value))
    if isinstance(value, (str, sw.Output)):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise _error(
        f"template folder {name!r}: parameter {key!r} of {template!r} must be text, a number or a "
        f"boolean, not {type(value).__name__}",
        hint="a list parameter (CommaDelimitedList, List<...>) is one text: 'a,b,c'")
