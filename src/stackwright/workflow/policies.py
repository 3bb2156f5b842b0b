"""Policies: rules a plan must satisfy before it may be applied.

Interface used by preview, `plan` and `apply`: ``evaluate`` returns every violation;
``blocking`` keeps the mandatory ones; ``refuse_blocking`` raises when there are any.

Two kinds of rule run on a plan:

* built-in rules: ``no-destroy-stateful`` and ``required-tags`` (``BUILTIN_RULES``,
  about any provider), and the rules providers bring (``InputRule``; the AWS provider
  brings ``no-public-bucket`` and ``no-admin-policy``);
* user policies: functions in ``<project>/policies/*.py`` decorated ``@sw.policy`` or
  named ``policy_*``, called with the plan and returning violations.

Each environment sets every rule to ``mandatory`` (blocks `up`), ``advisory`` (shown,
never blocks) or ``off`` in ``stackwright.yaml``
(``environments.<env>.policies: {rule: mandatory}``). Rules judge what the plan
*changes*: an unchanged resource is not re-judged, so switching a rule on in an
environment never blocks an unrelated change; the resource is checked the next time
it changes.
"""

from __future__ import annotations

import copy
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

from stackwright.dataclass_methods import FrozenCompared, frozen_record
from stackwright.errors import ProjectError, StackwrightError, raised
from stackwright.model.policy import POLICY_MARK, PolicyInfo
from stackwright.model.policy import Violation as Finding
from stackwright.model.resource import URN_SEPARATOR, urn_name, urn_parts
from stackwright.model.values import UNKNOWN, Secret
from stackwright.plan.plan import Op, Plan, Step
from stackwright.program.project import PROJECT_FILE, Project
from stackwright.program.runner import project_imports
from stackwright.providers.protocol import InputRule, ProviderLookup
from stackwright.workflow.environments import Enforcement, Environment

__all__ = [
    "BUILTIN_RULES", "POLICY_DIR", "PolicyError", "Rule", "RuleContext", "Violation",
    "blocking", "evaluate", "provider_rules", "refuse_blocking", "rules_for", "user_rules",
    "with_violations",
]

POLICY_DIR = "policies"
"""User policies live in ``<project>/policies/*.py``."""

ALLOW_DESTROY_HINT = "pass --allow-destroy if you mean it"


# Every plan with changes loads these classes: their methods are written, not generated
# (see stackwright.dataclass_methods); they behave as ``@dataclass(frozen=True)``.


@frozen_record
class Violation(FrozenCompared):
    """One objection to a plan, with the rule that raised it and whether it blocks."""

    policy: str
    message: str
    urn: str | None = None
    mandatory: bool = True

    def __init__(self, policy: str, message: str, urn: str | None = None, mandatory: bool = True) -> None:
        object.__setattr__(self, "policy", policy)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "urn", urn)
        object.__setattr__(self, "mandatory", mandatory)

    @property
    def enforcement(self) -> str:
        return "mandatory" if self.mandatory else "advisory"

    @property
    def subject(self) -> str | None:
        """``type name`` of the resource for people; messages leave it out because
        every renderer shows it (and JSON has the URN)."""
        if self.urn is None:
            return None
        if self.urn.count(URN_SEPARATOR) < 3:
            return self.urn
        return f"{urn_parts(self.urn)[2]} {urn_name(self.urn)}"

    def to_json(self) -> dict[str, Any]:
        """The ``violations[]`` entry of the plan JSON (docs/plan-json.md)."""
        return {"policy": self.policy, "enforcement": self.enforcement,
                "message": self.message, "urn": self.urn}


class PolicyError(StackwrightError):
    """A mandatory policy refused the plan, or a user policy is broken."""


@frozen_record
class RuleContext(FrozenCompared):
    """What a rule may consult besides the plan."""

    env: Environment
    allow_destroy: bool
    providers: ProviderLookup

    def __init__(self, env: Environment, allow_destroy: bool, providers: ProviderLookup) -> None:
        object.__setattr__(self, "env", env)
        object.__setattr__(self, "allow_destroy", allow_destroy)
        object.__setattr__(self, "providers", providers)


RuleCheck = Callable[[Plan, RuleContext], Iterable[Finding]]


@frozen_record
class Rule(FrozenCompared):
    """A named check with the enforcement it has where the environment is silent."""

    name: str
    check: RuleCheck
    default: Enforcement
    about: str
    origin: str
    """Where the rule is defined: ``built-in``, ``provider NAME`` or ``policies/file.py:LINE``."""

    def __init__(self, name: str, check: RuleCheck, default: Enforcement, about: str, origin: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "check", check)
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "about", about)
        object.__setattr__(self, "origin", origin)


# --- evaluating -----------------------------------------------------------------------


def evaluate(plan: Plan, project: Project, env: Environment, *, allow_destroy: bool = False,
             providers: ProviderLookup | None = None) -> list[Violation]:
    """Every violation of the policies that apply to ``env``.

    ``providers`` tells which resource types are stateful; by default an unconfigured
    registry, which answers that without any cloud access. A provider's rules judge only
    its own types, so only the providers the plan uses are loaded for theirs; all are
    when the environment names policies, so that every name can be checked.
    """
    rules = rules_for(project, None if env.policies else {s.type.partition(":")[0] for s in plan.steps})
    _check_configured(env, rules, project)
    ctx = RuleContext(env=env, allow_destroy=allow_destroy, providers=providers or _registry())
    out: list[Violation] = []
    for rule in rules:
        enforcement = env.policies.get(rule.name, rule.default)
        if enforcement != "off":
            out.extend(Violation(rule.name, f.message, f.urn, enforcement == "mandatory")
                       for f in rule.check(plan, ctx))
    return out


def blocking(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.mandatory]


def refuse_blocking(violations: list[Violation]) -> None:
    """Raise ``PolicyError`` when a mandatory violation forbids applying the plan."""
    blocked = blocking(violations)
    if not blocked:
        return
    first = blocked[0]
    more = f" (and {len(blocked) - 1} more)" if len(blocked) > 1 else ""
    destroy = any(v.policy == "no-destroy-stateful" for v in blocked)
    raise PolicyError(
        f"{len(blocked)} mandatory policy violation(s) block this change: "
        f"{first.policy}: {first.message}{more}",
        hint=ALLOW_DESTROY_HINT if destroy else
        "fix the resources, or make the policy advisory for this environment in stackwright.yaml",
    )


def with_violations(plan: Plan, violations: Iterable[Violation]) -> dict[str, Any]:
    """The documented plan JSON plus its ``violations`` (docs/plan-json.md)."""
    return {**plan.view(), "violations": [v.to_json() for v in violations]}


def rules_for(project: Project, providers: Iterable[str] | None = None) -> list[Rule]:
    """Built-in rules, the providers' rules (of all, or of ``providers``), then the
    project's own, each name used once."""
    rules = [*BUILTIN_RULES, *provider_rules(providers)]
    seen = {r.name: r.origin for r in rules}
    for rule in user_rules(project):
        if rule.name in seen:
            raise PolicyError(f"{rule.origin}: policy name {rule.name!r} is already used "
                              f"({seen[rule.name]})",
                              hint="rename the function or pass @sw.policy(name=...)")
        seen[rule.name] = rule.origin
        rules.append(rule)
    return rules


def _check_configured(env: Environment, rules: list[Rule], project: Project) -> None:
    """A misspelt rule name in ``stackwright.yaml`` would silently enforce nothing."""
    known = {r.name for r in rules}
    unknown = sorted(set(env.policies) - known)
    if unknown:
        raise ProjectError(
            f"environment {env.name!r} configures unknown policy {unknown[0]!r}",
            file=str(project.root / PROJECT_FILE),
            hint="known policies: " + ", ".join(sorted(known)),
        )


def _registry() -> ProviderLookup:
    from stackwright.providers.registry import ProviderRegistry

    return ProviderRegistry()


# --- helpers shared by the built-in rules ----------------------------------------------

NEW_INPUTS = frozenset({Op.CREATE, Op.UPDATE, Op.REPLACE})


def _changing(plan: Plan, types: frozenset[str] | None = None) -> Iterator[tuple[Step, Mapping[str, Any]]]:
    """Steps that bring new inputs, with those inputs: what the rules judge."""
    for step in plan.steps:
        if step.op in NEW_INPUTS and step.inputs is not None and (types is None or step.type in types):
            yield step, step.inputs


def _is_stateful(ctx: RuleContext, type_token: str) -> bool:
    try:
        return bool(ctx.providers.resource(type_token).stateful)
    except (StackwrightError, KeyError, ImportError):
        return False


# --- no-destroy-stateful -------------------------------------------------------------


def no_destroy_stateful(plan: Plan, ctx: RuleContext) -> Iterator[Finding]:
    """Deleting a bucket, table or cluster loses what it holds: require intent."""
    if ctx.allow_destroy:
        return
    for step in plan.steps:
        if step.op is Op.DELETE and step.retain_on_delete:
            continue  # the object stays in the cloud; only the record goes
        if step.op in (Op.DELETE, Op.REPLACE):
            why = _guarded(ctx, step)
            if why:
                yield Finding(f"would be {_destroyed(step)}; it is {why} ({ALLOW_DESTROY_HINT})", step.urn)


def _guarded(ctx: RuleContext, step: Step) -> str:
    reasons = (["protected"] if step.protect else []) + (
        ["stateful: deleting it loses its data"] if _is_stateful(ctx, step.type) else [])
    return " and ".join(reasons)


def _destroyed(step: Step) -> str:
    if step.op is Op.DELETE:
        return "deleted"
    keys = ", ".join(step.replace_keys)
    return "replaced (deleted and created anew)" + (f" because {keys} changed" if keys else "")


# --- required-tags -------------------------------------------------------------------


def required_tags(plan: Plan, ctx: RuleContext) -> Iterator[Finding]:
    """Cost reports and on-call routing read tags; a resource without them is orphaned."""
    wanted = ctx.env.required_tags
    if not wanted:
        return
    for step, inputs in _changing(plan):
        if "tags" not in inputs:
            continue  # not a taggable type
        tags = inputs["tags"]
        if tags is UNKNOWN or isinstance(tags, Secret):
            continue  # decided during apply
        present = tags if isinstance(tags, Mapping) else {}
        missing = [t for t in wanted if present.get(t) in (None, "")]
        if missing:
            yield Finding(f"lacks required tag(s): {', '.join(missing)}", step.urn)


# --- rules that providers bring --------------------------------------------------------


def provider_rules(providers: Iterable[str] | None = None) -> list[Rule]:
    """Each built-in provider's (or each of ``providers``') ``InputRule``s as rules over
    the plan."""
    from stackwright.providers.registry import builtin_policy_rules

    return [_input_rule(provider, rule) for provider, rule in builtin_policy_rules(providers)]


def _input_rule(provider: str, rule: InputRule) -> Rule:
    def check(plan: Plan, ctx: RuleContext) -> Iterator[Finding]:
        for step, inputs in _changing(plan, rule.types):
            for message in rule.check(step.type, inputs):
                yield Finding(message, step.urn)

    return Rule(rule.name, check, rule.default, rule.about, origin=f"provider {provider}")


BUILTIN_RULES: tuple[Rule, ...] = (
    Rule("no-destroy-stateful", no_destroy_stateful, "mandatory",
         "no delete or replace of protected or stateful resources without --allow-destroy", "built-in"),
    Rule("required-tags", required_tags, "advisory",
         "taggable resources carry the environment's required_tags", "built-in"),
)


# --- user policies -------------------------------------------------------------------


@frozen_record
class _Source(FrozenCompared):
    """Where a user policy is defined, for error messages."""

    path: Path
    shown: str
    line: int | None = None

    def __init__(self, path: Path, shown: str, line: int | None = None) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "shown", shown)
        object.__setattr__(self, "line", line)

    def __str__(self) -> str:
        return f"{self.shown}:{self.line}" if self.line else self.shown

    def error(self, message: str, hint: str, exc: BaseException | None = None) -> PolicyError:
        """An error at the deepest frame of ``exc`` in this file, else at this line."""
        import traceback

        line = self.line
        target = self.path.resolve()
        for frame in traceback.extract_tb(exc.__traceback__) if exc is not None else ():
            if Path(frame.filename).resolve() == target:
                line = frame.lineno
        return PolicyError(message, file=self.shown, line=line, hint=hint)


FIX_HINT = "fix the policy, or set it to `off` for this environment; --debug shows the traceback"
RESULT_HINT = "return or yield strings or sw.Violation(message, urn=...); return nothing when all is well"


def user_rules(project: Project) -> list[Rule]:
    """The policies in ``<project>/policies/*.py`` (files starting with ``_`` are helpers)."""
    folder = project.root / POLICY_DIR
    if not folder.is_dir():
        return []
    rules: list[Rule] = []
    for path in sorted(folder.glob("*.py")):
        if not path.name.startswith("_"):
            source = _Source(path, project.relative(path))
            rules.extend(_rules_in(_load(project, source), source))
    return rules


def _load(project: Project, source: _Source) -> ModuleType:
    """Run one policy file as a module, with the project importable as in the program.
    It is compiled from its text each time: a cached bytecode file is trusted on the
    source's mtime and size, which an edit within the same second can keep."""
    import importlib.util

    name = f"_stackwright_policies.{source.path.stem}"
    spec = importlib.util.spec_from_file_location(name, source.path)
    if spec is None or spec.loader is None:
        raise source.error("cannot load this policy file", "policy files are Python modules")
    module = importlib.util.module_from_spec(spec)
    try:
        code = compile(source.path.read_bytes(), str(source.path), "exec")
        with project_imports([project.root]):
            sys.modules[name] = module  # dataclasses and pickling look modules up by name
            exec(code, module.__dict__)
    except (StackwrightError, KeyboardInterrupt):
        raise
    except SyntaxError as exc:
        raise PolicyError(f"syntax error: {exc.msg}", file=source.shown, line=exc.lineno,
                          hint="fix the policy file and run the command again") from exc
    except BaseException as exc:  # noqa: BLE001 - sys.exit() in a policy file fails the check, never passes it
        raise source.error(f"loading the policy file {raised(exc)}", FIX_HINT, exc) from exc
    sys.modules[name] = module  # the project's helper modules are forgotten, not this one
    return module


def _rules_in(module: ModuleType, source: _Source) -> list[Rule]:
    """Top-level functions defined in the file that are marked or named ``policy_*``."""
    rules = []
    for attr, fn in vars(module).items():
        if not isinstance(fn, FunctionType) or fn.__module__ != module.__name__:
            continue
        if not hasattr(fn, POLICY_MARK) and not attr.startswith("policy_"):
            continue
        info = getattr(fn, POLICY_MARK, None)
        info = info if isinstance(info, PolicyInfo) else PolicyInfo()
        at = _Source(source.path, source.shown, fn.__code__.co_firstlineno)
        name = info.name or attr
        rules.append(Rule(name, _user_check(fn, name, at), info.enforcement,
                          (inspect.getdoc(fn) or "").split("\n", 1)[0], str(at)))
    return rules


def _user_check(fn: Callable[..., Any], name: str, at: _Source) -> RuleCheck:
    """The rule body for a user function: a private copy of the plan in (a policy must
    not be able to change what is applied), findings out, any exception turned into an
    error naming the policy's file and line."""
    def check(plan: Plan, ctx: RuleContext) -> list[Finding]:
        try:
            return [_finding(item, name, at) for item in _items(fn(copy.deepcopy(plan)), name, at)]
        except (StackwrightError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - sys.exit() in a policy fails the check, never passes it
            raise at.error(f"policy {name!r} {raised(exc)}", FIX_HINT, exc) from exc

    return check


def _items(result: Any, name: str, at: _Source) -> Iterable[Any]:
    if result is None:
        return []
    if isinstance(result, (str, Finding, Mapping)) or hasattr(result, "message"):
        return [result]
    if isinstance(result, Iterable):
        return result
    raise _bad_result(result, name, at)


def _finding(item: Any, name: str, at: _Source) -> Finding:
    """A violation as a user policy may give it: a string, or anything with ``message``
    (and optionally ``urn``), ``sw.Violation`` included."""
    if isinstance(item, Finding):
        return item
    if isinstance(item, str):
        return Finding(item)
    message = item.get("message") if isinstance(item, Mapping) else getattr(item, "message", None)
    urn = item.get("urn") if isinstance(item, Mapping) else getattr(item, "urn", None)
    if isinstance(message, str) and (urn is None or isinstance(urn, str)):
        return Finding(message, urn)
    raise _bad_result(item, name, at)


def _bad_result(value: Any, name: str, at: _Source) -> PolicyError:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return at.error(f"policy {name!r} gave {type(value).__name__} {text}, not a violation", RESULT_HINT)
