"""preview, up, destroy, refresh, import, rollback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from stackwright.cli.common import confirm_or_fail, echo_lines, open_stack
from stackwright.cli.main import diff_option, parallel_option, stack_option, yes_option

if TYPE_CHECKING:  # imported lazily at run time: `stackwright --help` stays fast
    from stackwright.operations.session import StackSession
    from stackwright.plan.plan import Plan
    from stackwright.workflow.policies import Violation


def register(cli: click.Group) -> None:
    for command in (preview, up, destroy, refresh, import_, rollback):
        cli.add_command(command)


FORMATS = ("text", "json", "markdown")


def _output_format(output: str | None, as_json: bool) -> str:
    """``--json`` is kept as the older spelling of ``--format json``."""
    if as_json and output not in (None, "json"):
        raise click.BadParameter(f"--json contradicts --format {output}", param_hint="--json")
    return "json" if as_json else output or "text"


def _formatted(plan: Plan, violations: list[Violation], output: str) -> str:
    from stackwright.workflow.markdown import render_plan
    from stackwright.workflow.policies import with_violations

    if output == "markdown":
        return render_plan(plan, violations)
    return json.dumps(with_violations(plan, violations), indent=2, sort_keys=True) + "\n"


def _violations(session: StackSession, plan: Plan, allow_destroy: bool) -> list[Violation]:
    """What the stack's environment's policies say of ``plan``; a plan that changes
    nothing has nothing to judge (and `up` would not apply it)."""
    if not plan.has_changes:
        return []
    from stackwright.workflow.environments import environment_for
    from stackwright.workflow.policies import evaluate

    env = environment_for(session.project, session.stack)
    return evaluate(plan, session.project, env, allow_destroy=allow_destroy, providers=session.providers)


class PolicyCheck:
    """The ``check`` `up` runs on the plan it made under the lock: show the plan and
    refuse on a mandatory violation; keep advisory ones for the confirmation."""

    def __init__(self, session: StackSession, allow_destroy: bool, show_diff: bool) -> None:
        self.session = session
        self.allow_destroy = allow_destroy
        self.show_diff = show_diff
        self.violations: list[Violation] = []

    def __call__(self, plan: Plan) -> None:
        from stackwright.cli.render import plan_lines, violation_lines
        from stackwright.workflow.policies import blocking, refuse_blocking

        self.violations = _violations(self.session, plan, self.allow_destroy)
        if blocking(self.violations):
            echo_lines(plan_lines(plan, show_diff=self.show_diff))
            echo_lines(violation_lines(self.violations))
            refuse_blocking(self.violations)


def _apply_options(parallel: int) -> Any:
    from stackwright.engine.apply import ApplyOptions

    if parallel < 1:
        raise click.BadParameter("must be at least 1", param_hint="--parallel")
    return ApplyOptions(parallel=parallel)


@click.command()
@stack_option
@diff_option
@click.option("--format", "output", type=click.Choice(FORMATS), default=None,
              help="text (default), json (docs/plan-json.md) or markdown (for a pull request).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--show-same", is_flag=True, help="List unchanged resources too.")
@click.option("--target", "targets", multiple=True, metavar="URN|NAME",
              help="Only these resources (and what they need): a URN, or a name that is unambiguous.")
@click.option("--refresh", is_flag=True, help="Read the live objects first and plan against them.")
@click.option("--allow-destroy", is_flag=True, help="Judge policies as `up --allow-destroy` would.")
def preview(stack_name: str | None, who: str | None, show_diff: bool, output: str | None,
            as_json: bool, show_same: bool, targets: tuple[str, ...], refresh: bool,
            allow_destroy: bool) -> None:
    """Show what `up` would change and what policies say about it. Changes nothing."""
    from stackwright.cli.render import plan_lines, violation_lines
    from stackwright.operations.update import preview as make_preview

    output = _output_format(output, as_json)
    session = open_stack(stack_name, who)
    try:
        plan = make_preview(session, targets, refresh=refresh)
        pending = session.store.pending_count(session.stack)
        violations = _violations(session, plan, allow_destroy)
    finally:
        session.close()
    if output != "text":
        click.echo(_formatted(plan, violations, output), nl=False)
        return
    echo_lines(plan_lines(plan, show_diff=show_diff, show_same=show_same))
    if violations:
        echo_lines(violation_lines(violations))
    if pending:
        click.echo(click.style(f"{pending} interrupted operation(s) will be resolved by the next `up`.", fg="yellow"))


@click.command()
@stack_option
@yes_option()
@click.option("--target", "targets", multiple=True, metavar="URN|NAME",
              help="Only these resources (and what they need): a URN, or a name that is unambiguous.")
@parallel_option
@diff_option
@click.option("--refresh", is_flag=True, help="Read the live objects first (records drift), then plan.")
@click.option("--allow-destroy", is_flag=True,
              help="Allow deleting or replacing stateful and protected resources (policy no-destroy-stateful).")
def up(stack_name: str | None, who: str | None, yes: bool, targets: tuple[str, ...],
       parallel: int, show_diff: bool, refresh: bool, allow_destroy: bool) -> None:
    """Preview, confirm, then apply exactly the previewed changes."""
    from stackwright.operations.update import up as run_up
    from stackwright.workflow.gate import check_gate

    session = open_stack(stack_name, who)
    try:
        check_gate(session)
        policy = PolicyCheck(session, allow_destroy, show_diff)
        outcome = run_up(session, options=_apply_options(parallel), sink=_sink(),
                         confirm=_confirmer(yes, show_diff, policy), targets=targets,
                         refresh=refresh, check=policy)
    finally:
        session.close()
    _report(outcome, "Update")


@click.command()
@stack_option
@yes_option("Destroy without asking.")
@parallel_option
@click.option("--target", "targets", multiple=True, metavar="URN|NAME",
              help="Only these resources and what depends on them: a URN, or a name that is unambiguous.")
def destroy(stack_name: str | None, who: str | None, yes: bool, parallel: int, targets: tuple[str, ...]) -> None:
    """Delete every resource of the stack (or the targets and their dependents), dependents first."""
    from stackwright.operations.update import destroy as run_destroy

    session = open_stack(stack_name, who)
    try:
        outcome = run_destroy(session, options=_apply_options(parallel), sink=_sink(),
                              confirm=_confirmer(yes, False), targets=targets)
    finally:
        session.close()
    _report(outcome, "Destroy")


def _sink() -> Any:
    from stackwright.cli.progress import progress_for_terminal

    return progress_for_terminal()


def _confirmer(yes: bool, show_diff: bool, policy: PolicyCheck | None = None) -> Any:
    from stackwright.cli.render import plan_lines, violation_lines

    def confirm(plan: Any) -> bool:
        echo_lines(plan_lines(plan, show_diff=show_diff))
        if policy is not None and policy.violations:
            echo_lines(violation_lines(policy.violations))
        return confirm_or_fail("Do you want to apply these changes?", yes)

    return confirm


def _report(outcome: Any, what: str) -> None:
    recovery, body = outcome_lines(outcome, what)
    if recovery:
        echo_lines(recovery)
    if outcome.ok:
        echo_lines(body)
        return
    click.echo("\n".join(body), err=True)
    raise SystemExit(1)


def outcome_lines(outcome: Any, what: str) -> tuple[list[str], list[str]]:
    """What an update did: the interrupted operations it resolved, then the result
    (`run` prints both in a stack's block)."""
    from stackwright.cli.render import plan_lines

    recovery = [click.style(line, fg="yellow") for line in _recovery_lines(outcome.recovery)]
    if outcome.result is None:
        return recovery, (["Cancelled; nothing was changed."] if outcome.cancelled
                          else plan_lines(outcome.plan))
    result = outcome.result
    number = f" (checkpoint {outcome.checkpoint.number})" if outcome.checkpoint else ""
    done = ", ".join(f"{v} {k}" for k, v in sorted(result.done.items())) or "nothing"
    if result.ok:
        return recovery, [click.style(f"{what} succeeded in {outcome.duration:.1f}s{number}: {done}.",
                                      fg="green", bold=True)]
    body = [click.style(f"  failed: {f.action} {f.urn}: {f.message}", fg="red") for f in result.failures]
    state = "was interrupted" if result.interrupted else "failed"
    extra = f"; {len(result.skipped)} skipped" if result.skipped else ""
    extra += f"; {len(result.not_started)} not started" if result.not_started else ""
    body.append(click.style(f"{what} {state}{number}: {done} done, {len(result.failures)} failed{extra}.",
                            fg="red", bold=True))
    return recovery, body


def _recovery_lines(report: Any) -> list[str]:
    lines = [f"Recovered interrupted create of {u}: found it and recorded it" for u in report.adopted]
    lines += [f"Resolved interrupted operation on {u}" for u in report.forgotten]
    return lines


@click.command()
@stack_option
@yes_option("Record what was found in the state.")
@parallel_option
def refresh(stack_name: str | None, who: str | None, yes: bool, parallel: int) -> None:
    """Read every resource and report drift (changed or deleted outside Stackwright)."""
    from stackwright.operations.refresh import refresh as run_refresh

    session = open_stack(stack_name, who)
    try:
        outcome = run_refresh(session, parallel=parallel, record=yes, sink=_sink_quiet())
    finally:
        session.close()
    echo_lines(_drift_lines(outcome.result))
    if outcome.result.errors:
        raise SystemExit(1)
    if outcome.result.drift and not yes:
        click.echo("Run `stackwright refresh --yes` to record this in the state, or `up` to put it back.")
    elif outcome.checkpoint is not None:
        click.echo(click.style(f"Recorded in checkpoint {outcome.checkpoint.number}.", fg="green"))


def _sink_quiet() -> Any:
    from stackwright.engine.events import EventSink

    return EventSink()


def _drift_lines(result: Any) -> list[str]:
    from stackwright.cli.render import _diff_line
    from stackwright.model.resource import urn_name

    lines = []
    for drift in result.drift:
        if drift.kind == "deleted":
            lines.append(click.style(f"  - {drift.type} {urn_name(drift.urn)}  deleted outside Stackwright", fg="red"))
        elif drift.kind == "changed":
            lines.append(click.style(f"  ~ {drift.type} {urn_name(drift.urn)}  changed outside Stackwright", fg="yellow"))
            lines.extend("      " + _diff_line(d) for d in drift.diffs)
    for urn, error in sorted(result.errors.items()):
        lines.append(click.style(f"  ! {urn}: {error}", fg="red"))
    real = [d for d in result.drift if d.kind != "outputs"]
    lines.append(click.style(f"Checked {result.checked} resources: "
                             + (f"{len(real)} drifted." if real else "no drift."), bold=True))
    return lines


@click.command("import")
@stack_option
@click.argument("type_token", metavar="TYPE")
@click.argument("name")
@click.argument("resource_id", metavar="ID")
def import_(stack_name: str | None, who: str | None, type_token: str, name: str, resource_id: str) -> None:
    """Adopt an existing resource and print the Python that declares it."""
    from stackwright.operations.importing import import_resource

    session = open_stack(stack_name, who)
    try:
        result = import_resource(session, type_token, name, resource_id)
    finally:
        session.close()
    click.echo(click.style(f"Imported {result.urn} (checkpoint {result.checkpoint}).", fg="green"), err=True)
    click.echo("Add this to your program:\n", err=True)
    click.echo(result.code)


@click.command()
@stack_option
@click.argument("number", type=int)
@yes_option()
@parallel_option
@click.option("--allow-destroy", is_flag=True,
              help="Allow deleting or replacing stateful and protected resources (policy no-destroy-stateful).")
def rollback(stack_name: str | None, who: str | None, number: int, yes: bool, parallel: int,
             allow_destroy: bool) -> None:
    """Return the stack's resources to the inputs recorded at checkpoint NUMBER."""
    from stackwright.operations.rollback import rollback as run_rollback

    session = open_stack(stack_name, who)
    try:
        policy = PolicyCheck(session, allow_destroy, True)
        outcome = run_rollback(session, number, options=_apply_options(parallel), sink=_sink(),
                               confirm=_confirmer(yes, True, policy), check=policy)
    finally:
        session.close()
    _report(outcome, f"Rollback to checkpoint {number}")
