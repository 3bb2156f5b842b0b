"""CloudFormation templates as documents: parsing (JSON, or YAML with the ``!Ref`` short
forms), checking parameters against the template's ``Parameters``, and the export names
a template publishes (``Outputs.*.Export.Name``) and imports (``Fn::ImportValue``).

Pure functions, no AWS calls, so the planner can use them while it plans.

Export and import names are resolved from literals, ``Ref`` to parameters (the given
value, else the parameter's ``Default``) and to ``AWS::StackName``/``AWS::Region``, and
``Fn::Sub``/``Fn::Join`` of those. A name that needs anything else (``Fn::GetAtt``,
``AWS::AccountId``, a value known only after apply, a mapping lookup) is left out: it
orders nothing, and the stack then needs ``depends_on`` for that name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from stackwright.errors import InputError
from stackwright.providers.protocol import Links

__all__ = [
    "check_parameters", "imported", "parse_template", "same_template", "short_form", "template_body",
    "template_links",
]


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms; dates stay strings, as CloudFormation reads them."""


_TemplateLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    """``!Ref x`` is ``{"Ref": x}``; ``!GetAtt a.b`` is ``{"Fn::GetAtt": ["a", "b"]}``; ``!X`` is ``Fn::X``."""
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", short_form)


def parse_template(template: Any) -> dict[str, Any]:
    """The template as a document, whichever form it was given in."""
    if isinstance(template, Mapping):
        return json.loads(json.dumps(template))  # type: ignore[no-any-return]
    if not isinstance(template, str):
        raise InputError(f"template must be a dict or a JSON/YAML string, got {type(template).__name__}",
                         prop="template")
    try:
        parsed = json.loads(template)
    except ValueError:
        try:
            parsed = yaml.load(template, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise InputError(f"template is neither JSON nor YAML: {exc}", prop="template") from None
    if not isinstance(parsed, dict):
        raise InputError("template must be a mapping with a 'Resources' section", prop="template")
    return parsed


def same_template(a: Any, b: Any) -> bool:
    try:
        return parse_template(a) == parse_template(b)
    except InputError:
        return False


def template_body(template: Any) -> str:
    return template if isinstance(template, str) else json.dumps(template)


# --- parameters ----------------------------------------------------------------------


def check_parameters(stack: str, template: Mapping[str, Any], given: Mapping[str, str]) -> None:
    """Raise ``InputError`` naming the stack and the parameter when ``given`` does not
    fit the template: an undeclared parameter, a required one missing, or a value
    outside ``AllowedValues``, ``AllowedPattern``, the length or the value bounds."""
    declared = _section(template, "Parameters")
    for key in sorted(given):
        if key not in declared:
            raise InputError(f"stack {stack!r}: the template declares no parameter {key!r}",
                             prop=f"parameters.{key}",
                             hint=f"its parameters: {', '.join(sorted(declared)) or 'none'}")
    for key, spec in declared.items():
        spec = spec if isinstance(spec, Mapping) else {}
        if key not in given:
            if "Default" not in spec:
                raise InputError(f"stack {stack!r}: the template requires parameter {key!r}, which has no Default",
                                 prop=f"parameters.{key}", hint=f"set parameters[{key!r}]")
            continue
        problem = _parameter_problem(spec, given[key])
        if problem:
            raise InputError(f"stack {stack!r}: parameter {key!r} = {given[key]!r}{problem}",
                             prop=f"parameters.{key}")


def _parameter_problem(spec: Mapping[str, Any], value: str) -> str | None:
    """What is wrong with one value (each item, for list types, naming the item), as
    the end of a sentence, or None."""
    kind = str(spec.get("Type", "String"))
    listed = kind.startswith("List<") or kind == "CommaDelimitedList"
    items = value.split(",") if listed else [value]
    for item in items:
        item = item.strip() if len(items) > 1 else item
        problem = _item_problem(spec, "Number" in kind, item)
        if problem:
            return f": item {item!r} {problem}" if listed else f" {problem}"
    return None


def _item_problem(spec: Mapping[str, Any], numeric: bool, item: str) -> str | None:
    allowed = spec.get("AllowedValues")
    if isinstance(allowed, list) and item not in [str(v) for v in allowed]:
        return f"is not one of the AllowedValues {_listed([str(v) for v in allowed])}"
    pattern = spec.get("AllowedPattern")
    if isinstance(pattern, str) and re.fullmatch(pattern, item) is None:
        return f"does not match the AllowedPattern {pattern!r}"
    if "MinLength" in spec and len(item) < int(spec["MinLength"]):
        return f"is shorter than MinLength {spec['MinLength']}"
    if "MaxLength" in spec and len(item) > int(spec["MaxLength"]):
        return f"is longer than MaxLength {spec['MaxLength']}"
    if numeric:
        return _number_problem(spec, item)
    return None


def _listed(values: list[str], most: int = 12) -> str:
    """The values for a message; a long list is cut, saying how many were left out."""
    shown = ", ".join(repr(v) for v in values[:most])
    return f"[{shown}]" if len(values) <= most else f"[{shown}, ... ({len(values) - most} more)]"


def _number_problem(spec: Mapping[str, Any], item: str) -> str | None:
    try:
        number = float(item)
    except ValueError:
        return "is not a number"
    if "MinValue" in spec and number < float(spec["MinValue"]):
        return f"is below MinValue {spec['MinValue']}"
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        return f"is above MaxValue {spec['MaxValue']}"
    return None


# --- exports and imports -------------------------------------------------------------


def template_links(template: Any, parameters: Mapping[str, Any], stack_name: Any,
                   region: str | None = None) -> Links:
    """The export names ``template`` publishes and imports, as deployed under
    ``stack_name`` with ``parameters``; names that cannot be resolved are left out."""
    document = parse_template(template)
    refs = _known_refs(document, parameters, stack_name, region)
    outputs = _section(document, "Outputs")
    exports = {_resolve(out["Export"].get("Name"), refs) for out in outputs.values()
               if isinstance(out, Mapping) and isinstance(out.get("Export"), Mapping)}
    imports = {_resolve(name, refs) for name in imported(document)}
    return Links(exports=frozenset(n for n in exports if n), imports=frozenset(n for n in imports if n))


def _known_refs(document: Mapping[str, Any], parameters: Mapping[str, Any], stack_name: Any,
                region: str | None) -> dict[str, str]:
    declared = _section(document, "Parameters")
    refs = {k: str(v["Default"]) for k, v in declared.items() if isinstance(v, Mapping) and "Default" in v}
    refs.update({k: v for k, v in parameters.items() if isinstance(v, str)})
    for key in set(parameters) - {k for k, v in parameters.items() if isinstance(v, str)}:
        refs.pop(key, None)  # a value known only after apply
    if isinstance(stack_name, str):
        refs["AWS::StackName"] = stack_name
    if region:
        refs["AWS::Region"] = region
    return refs


def _section(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = document.get(key)
    return found if isinstance(found, Mapping) else {}


def imported(node: Any) -> Iterator[Any]:
    """The arguments of every ``Fn::ImportValue`` in a document, unresolved."""
    if isinstance(node, Mapping):
        if "Fn::ImportValue" in node:
            yield node["Fn::ImportValue"]
        for value in node.values():
            yield from imported(value)
    elif isinstance(node, list):
        for value in node:
            yield from imported(value)


_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


def _resolve(node: Any, refs: Mapping[str, str]) -> str | None:
    """A string-valued intrinsic, when everything it needs is known."""
    if isinstance(node, (str, int, float)) and not isinstance(node, bool):
        return str(node)
    if not isinstance(node, Mapping) or len(node) != 1:
        return None
    (fn, arg), = node.items()
    if fn == "Ref":
        return refs.get(arg) if isinstance(arg, str) else None
    if fn == "Fn::Sub":
        return _substitute(arg, refs)
    if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
        parts = [_resolve(part, refs) for part in arg[1]]
        return None if None in parts else str(arg[0]).join(p for p in parts if p is not None)
    return None


def _substitute(arg: Any, refs: Mapping[str, str]) -> str | None:
    text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1]) if (
        isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], Mapping)) else (None, {})
    if not isinstance(text, str):
        return None
    known = dict(refs)
    for key, value in local.items():
        resolved = _resolve(value, refs)
        if resolved is None:
            known.pop(key, None)
        else:
            known[key] = resolved
    missing = [m for m in _SUB.findall(text) if m not in known]
    if missing:
        return None
    return _SUB.sub(lambda m: known[m.group(1)], text).replace("${!", "${")
