"""Chart values: files merged in order by helm, a dict given in the program, and
Outputs inside that dict.

An Output's value is not known while the program runs, so the chart is rendered with a
placeholder string in its place, and every place the placeholder appears in the
rendered objects becomes an Output again (resolved when the plan is made, or "known
after apply"). That is exact only when the chart uses the value verbatim; ``render``
checks it by rendering with a second set of placeholders and comparing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackwright.model.output import Output
from stackwright.providers.k8s.helm.binary import HelmError

PLACEHOLDER = re.compile(r"swout(\d+)-([ab])")
"""``swout<index>-<variant>``: valid inside any string, including DNS names."""


@dataclass(frozen=True)
class ValuesFile:
    path: str
    digest: str


def read_values_files(paths: Sequence[str]) -> list[ValuesFile]:
    """Each file checked to be a YAML mapping; errors name the file and line."""
    return [_read_values_file(path) for path in paths]


def _read_values_file(path: str) -> ValuesFile:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise HelmError(f"values file {path} cannot be read: {exc.strerror}", file=path,
                        hint="values_files are paths relative to the project folder") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise HelmError(f"values file {path} is not valid YAML: {getattr(exc, 'problem', exc)}",
                        file=path, line=mark.line + 1 if mark else None) from None
    if doc is not None and not isinstance(doc, dict):
        raise HelmError(f"values file {path} must hold a mapping, not {type(doc).__name__}", file=path)
    return ValuesFile(path=path, digest=hashlib.sha256(text).hexdigest())


@dataclass(frozen=True)
class OutputValue:
    """An Output found in the values dict, and where (``values.image.tag``)."""

    path: str
    output: Output[Any]


def with_placeholders(values: Mapping[str, Any], variant: str) -> tuple[dict[str, Any], list[OutputValue]]:
    """The values dict as helm will read it: Output number i becomes ``swout<i>-<variant>``.
    The traversal order is fixed, so both variants number the Outputs alike."""
    found: list[OutputValue] = []

    def fill(value: Any, path: str) -> Any:
        if isinstance(value, Output):
            found.append(OutputValue(path, value))
            return f"swout{len(found) - 1}-{variant}"
        if isinstance(value, Mapping):
            return {str(k): fill(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [fill(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return fill(values, "values"), found


def values_digest(files: Sequence[ValuesFile], document: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.path}\0{file.digest}\0".encode())
    digest.update(json.dumps(document, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def substitute(value: Any, outputs: Sequence[Output[Any]]) -> Any:
    """A rendered value with every placeholder turned back into its Output."""
    if isinstance(value, str):
        return _substitute_text(value, outputs)
    if isinstance(value, dict):
        return {k: substitute(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, outputs) for v in value]
    return value


def _substitute_text(text: str, outputs: Sequence[Output[Any]]) -> Any:
    matches = list(PLACEHOLDER.finditer(text))
    if not matches:
        return text
    if len(matches) == 1 and matches[0].group(0) == text:
        return outputs[int(matches[0].group(1))]
    parts: list[Any] = []
    position = 0
    for match in matches:
        parts += [text[position:match.start()], outputs[int(match.group(1))]]
        position = match.end()
    parts.append(text[position:])
    return Output.concat(*parts)


def neutral(text: str) -> str:
    """Rendered text with both placeholder variants made equal, for comparison."""
    return PLACEHOLDER.sub(lambda m: f"swout{m.group(1)}", text)


def used_indexes(text: str) -> set[int]:
    return {int(m.group(1)) for m in PLACEHOLDER.finditer(text)}
