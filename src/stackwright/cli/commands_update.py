"""preview, up, destroy, refresh, import, rollback."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

import click

from stackwright.cli.common import confirm_or_fail, echo_json, echo_lines, open_stack
from stackwright.cli.options import (
    diff_option, emergency_option, exit_code_option, json_option, parallel_option, stack_option, yes_option,
)

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


def _parallel(parallel: int) -> int:
    if parallel < 1:
        raise click.BadParameter("must be at least 1", param_hint="--parallel")
    return parallel


@click.command()
@stack_option
@diff_option
@click.option("--format", "output", type=click.Choice(FORMATS), default=None,
              help="text (default), json (docs/plan-json.md) or markdown (for a pull request).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--show-same", is_flag=True, help="List unchanged resources too.")
@click.option("--target", "targets", multiple=True, metavar="URN|NAME",
              help="Only these resources (and what they need): a URN, an unambiguous name, or a component (tenant:NAME) with everything under it.")
@click.option("--refresh", is_flag=True, help="Read the live objects first and plan against them.")
@click.option("--allow-destroy", is_flag=True, help="Judge policies as `up --allow-destroy` would.")
@exit_code_option("there are changes")
def preview(stack_name: str | None, who: str | None, show_diff: bool, output: str | None,
            as_json: bool, show_same: bool, targets: tuple[str, ...], refresh: bool,
            allow_destroy: bool, exit_code: bool) -> None:
    """Show what `up` would change and what policies say about it. Changes nothing."""
    from stackwright.cli.render import plan_lines, violation_lines
    from stackwright.operations.update import preview as make_preview

    output = _output_format(output, as_json)
    from stackwright.cli.main import leave_to_exit

    from stackwright.errors import PlanError

    session = open_stack(stack_name, who)
    kept: list[Any] = []
    try:
        try:
            plan = make_preview(session, targets, refresh=refresh, keep=kept)
        except PlanError as exc:
            if exc.plan is not None and output == "text":  # refused (protected resources): the plan first
                echo_lines(plan_lines(exc.plan, show_diff=show_diff, show_same=show_same))
            raise
        leave_to_exit(*kept, plan)
        in_flight = _in_flight(session)
        violations = _violations(session, plan, allow_destroy)
    finally:
        session.close()
    if output != "text":
        click.echo(_formatted(plan, violations, output), nl=False)
    else:
        echo_lines(plan_lines(plan, show_diff=show_diff, show_same=show_same))
        if violations:
            echo_lines(violation_lines(violations))
        if in_flight:
            click.echo(click.style(in_flight, fg="yellow"))
    if exit_code and plan.has_changes:
        raise SystemExit(2)


def _in_flight(session: StackSession) -> str:
    """What a preview says of operations under way: those of a holder of the stack's
    lock that may still run (as ``unlock`` judges it) are in progress, and only
    without one are pending operations interrupted."""
    from stackwright.operations.session import lock_is_stale
    from stackwright.state.codec import lock_holder

    lock = session.store.read_lock(session.stack)
    if lock is not None and not lock_is_stale(lock):
        return (f"Stack {session.stack!r} is being changed by {lock_holder(lock)}; "
                "this plan is made against what it has recorded so far.")
    pending = session.store.pending_count(session.stack)
    return f"{pending} interrupted operation(s) will be resolved by the next `up`." if pending else ""


@click.command()
@stack_option
@yes_option()
@click.option("--target", "targets", multiple=True, metavar="URN|NAME",
              help="Only these resources (and what they need): a URN, an unambiguous name, or a component (tenant:NAME) with everything under it.")
@parallel_option
@diff_option
@click.option("--refresh", is_flag=True, help="Read the live objects first (records drift), then plan.")
@click.option("--allow-destroy", is_flag=True,
              help="Let policy no-destroy-stateful pass deleting or replacing stateful resources (buckets, "
                   "tables, clusters). A protected resource stays refused: remove protect=True in the program.")
@emergency_option
@json_option
def up(stack_name: str | None, who: str | None, yes: bool, targets: tuple[str, ...],
       parallel: int, show_diff: bool, refresh: bool, allow_destroy: bool, emergency: str | None,
       as_json: bool) -> None:
    """Preview, confirm, then apply exactly the previewed changes."""
    from stackwright.workflow.gateway import ChangeRequest

    request = ChangeRequest("up", targets=targets, parallel=_parallel(parallel), refresh=refresh,
                            allow_destroy=allow_destroy, emergency=emergency)
    _finish(*run_change(stack_name, who, request, yes, show_diff, as_json), "Update", as_json)


@click.command()
@stack_option
@yes_option("Destroy without asking.")
@parallel_option
@click.option("--target", "targets", multiple=True, metavar="URN|NAME",
              help="Only these resources and what depends on them: a URN, an unambiguous name, or a component (tenant:NAME).")
@click.option("--allow-destroy", is_flag=True,
              help="Let policy no-destroy-stateful pass deleting stateful resources (buckets, tables, clusters). "
                   "A protected resource stays refused: remove protect=True in the program and run `up` first.")
@emergency_option
@json_option
def destroy(stack_name: str | None, who: str | None, yes: bool, parallel: int, targets: tuple[str, ...],
            allow_destroy: bool, emergency: str | None, as_json: bool) -> None:
    """Delete every resource of the stack (or the targets and their dependents), dependents first."""
    from stackwright.workflow.gateway import ChangeRequest

    request = ChangeRequest("destroy", targets=targets, parallel=_parallel(parallel),
                            allow_destroy=allow_destroy, emergency=emergency)
    _finish(*run_change(stack_name, who, request, yes, False, as_json), "Destroy", as_json)


def run_change(stack_name: str | None, who: str | None, request: Any, yes: bool, show_diff: bool,
               as_json: bool = False) -> tuple[Any, set[tuple[str, str]]]:
    """Open the stack and pass ``request`` through the change gateway, prompting (unless
    ``yes``) with the plan and what policies said of it. With ``as_json`` everything
    but the final document goes to stderr. Returns the result and the failed steps
    whose error the progress printed."""
    from stackwright.workflow.gateway import change

    session = open_stack(stack_name, who, change=request)
    sink = _sink(as_json)
    try:
        result = change(session, request, confirm=_confirmer(yes, show_diff, as_json), sink=sink,
                        refused=_show_refused(show_diff, as_json))
    finally:
        session.close()
    return result, sink.shown


def _finish(result: Any, shown: set[tuple[str, str]], what: str, as_json: bool) -> None:
    """The outcome as text, or as the JSON document (docs/json-output.md); exits 1
    after a failure or a declined prompt, either way."""
    if not as_json:
        _report(result.outcome, what, shown)
        return
    from stackwright.workflow.json_views import update_view

    echo_json(update_view(result.outcome, result.violations))
    if result.cancelled:
        click.echo("Cancelled; nothing was changed.", err=True)
    if not result.ok:
        raise SystemExit(1)


def run_state_edit(stack_name: str | None, who: str | None, request: Any, confirm: Any) -> Any:
    """A state edit through the change gateway; a declined prompt exits 1."""
    from stackwright.workflow.gateway import change

    session = open_stack(stack_name, who, change=request)
    try:
        result = change(session, request, confirm=confirm, sink=_sink_quiet())
    finally:
        session.close()
    if result.cancelled:
        click.echo("Cancelled; nothing was changed.", err=True)
        raise SystemExit(1)
    return result


def _show_refused(show_diff: bool, err: bool = False) -> Any:
    """Shows a plan mandatory policies refused, with the violations, before the error."""
    from stackwright.cli.render import plan_lines, violation_lines

    def show(plan: Any, violations: Any) -> None:
        echo_lines(plan_lines(plan, show_diff=show_diff), err=err)
        if violations:
            echo_lines(violation_lines(violations, blocks=f"`{plan.kind}`"), err=err)

    return show


def _sink(err: bool = False) -> Any:
    from stackwright.cli.progress import progress_for_terminal

    return progress_for_terminal(err=err)


def _confirmer(yes: bool, show_diff: bool, err: bool = False) -> Any:
    """The gateway's prompt: the plan and advisory violations, then the question. With
    ``yes`` and ``err`` (a JSON document on stdout) nothing is shown: the document
    holds the plan."""
    from stackwright.cli.render import plan_lines, violation_lines

    def confirm(prompt: Any) -> bool:
        if yes and err:
            return True
        echo_lines(plan_lines(prompt.plan, show_diff=show_diff), err=err)
        if prompt.violations:
            echo_lines(violation_lines(prompt.violations, blocks=f"`{prompt.plan.kind}`"), err=err)
        return confirm_or_fail("Do you want to apply these changes?", yes, err=err)

    return confirm


def _report(outcome: Any, what: str, shown: Collection[tuple[str, str]] = ()) -> None:
    """The outcome in a few lines; exits 1 after a failure or a declined prompt.
    ``shown``: the failed steps whose error the progress printed already."""
    recovery, body = outcome_lines(outcome, what, shown)
    if recovery:
        echo_lines(recovery)
    if outcome.cancelled:
        click.echo("\n".join(body), err=True)
        raise SystemExit(1)
    if outcome.ok:
        echo_lines(body)
        return
    click.echo("\n".join(body), err=True)
    raise SystemExit(1)


def outcome_lines(outcome: Any, what: str, shown: Collection[tuple[str, str]] = ()) -> tuple[list[str], list[str]]:
    """What an update did: the interrupted operations it resolved, then the result
    (`run` prints both in a stack's block). A failed step whose error the progress
    printed (in ``shown``) is named, its error not repeated."""
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
    body = failure_lines(result.failures, shown)
    state = "was interrupted" if result.interrupted else "failed"
    extra = f"; {len(result.skipped)} skipped" if result.skipped else ""
    extra += f"; {len(result.not_started)} not started" if result.not_started else ""
    body.append(click.style(f"{what} {state}{number}: {done} done, {len(result.failures)} failed{extra}.",
                            fg="red", bold=True))
    return recovery, body


def failure_lines(failures: Iterable[Any], shown: Collection[tuple[str, str]] = ()) -> list[str]:
    """Each failure with its hint; one whose error the progress printed already (in
    ``shown``) is named and pointed to, not repeated."""
    lines = []
    for f in failures:
        error = " (its error is above)" if (f.urn, f.action) in shown else f": {f.message}"
        lines.append(click.style(f"  failed: {f.action} {f.urn}{error}", fg="red"))
        lines += [f"    hint: {f.hint}"] if f.hint else []
    return lines


def _recovery_lines(report: Any) -> list[str]:
    lines = [f"Recovered interrupted create of {u}: found it and recorded it" for u in report.adopted]
    lines += [f"Resolved interrupted operation on {u}" for u in report.forgotten]
    return lines


@click.command()
@stack_option
@yes_option("Record what was found in the state.")
@parallel_option
@emergency_option
@json_option
@exit_code_option("drift is found")
def refresh(stack_name: str | None, who: str | None, yes: bool, parallel: int, emergency: str | None,
            as_json: bool, exit_code: bool) -> None:
    """Read every resource and report drift (changed or deleted outside Stackwright)."""
    from stackwright.workflow.json_views import refresh_view

    outcome, stack, project, protected = _refreshed(stack_name, who, yes, _parallel(parallel), emergency)
    result = outcome.result
    if as_json:
        echo_json(refresh_view(outcome, stack, project, recorded=yes))
    else:
        _report_drift(outcome, yes, protected)
    if result.errors:
        raise SystemExit(1)
    if exit_code and any(d.kind != "outputs" for d in result.drift):
        raise SystemExit(2)


def _report_drift(outcome: Any, recorded: bool, protected: bool = False) -> None:
    """The drift, then what puts it back: the next `up`, `preview` and `plan` read the
    live objects first (operations.drift_note), while the state is still the one this
    refresh read. In a protected environment only a saved plan changes the stack."""
    echo_lines(_drift_lines(outcome.result))
    if outcome.result.errors:
        return
    if any(d.kind != "outputs" for d in outcome.result.drift) and not recorded:
        if protected:
            click.echo("`stackwright plan --out FILE` plans putting the declared values back (it says which "
                       "it will not, and why); once approved, `stackwright apply FILE` applies it.")
        else:
            click.echo("`stackwright up` puts the declared values back (its plan says which it will not, "
                       "and why); `stackwright refresh --yes` records the live values instead.")
    elif outcome.checkpoint is not None:
        click.echo(click.style(f"Recorded in checkpoint {outcome.checkpoint.number}.", fg="green"))


def _refreshed(stack_name: str | None, who: str | None, record: bool, parallel: int,
               emergency: str | None) -> tuple[Any, str, str, bool]:
    """What was read, the stack and project, and whether its environment is protected.
    Only reads without ``record``; recording drift changes the state, so it goes
    through the change gateway."""
    from stackwright.operations.refresh import refresh as run_refresh
    from stackwright.workflow.environments import environment_for
    from stackwright.workflow.gateway import ChangeRequest, change

    request = ChangeRequest("refresh", parallel=parallel, emergency=emergency) if record else None
    session = open_stack(stack_name, who, change=request)
    try:
        outcome: Any
        if request is None:
            outcome = run_refresh(session, parallel=parallel, record=False, sink=_sink_quiet())
        else:
            outcome = change(session, request, confirm=lambda prompt: True, sink=_sink_quiet()).refreshed
        protected = environment_for(session.project, session.stack).protected
        return outcome, session.stack, session.project.name, protected
    finally:
        session.close()


def _sink_quiet() -> Any:
    """No step progress; notices only (a stale lock taken over)."""
    from stackwright.cli.progress import Notices

    return Notices()


def _drift_lines(result: Any) -> list[str]:
    from stackwright.cli.render import full_diff_lines
    from stackwright.model.resource import urn_name

    lines = []
    for drift in result.drift:
        if drift.kind == "deleted":
            lines.append(click.style(f"  - {drift.type} {urn_name(drift.urn)}  deleted outside Stackwright", fg="red"))
        elif drift.kind == "changed":
            lines.append(click.style(f"  ~ {drift.type} {urn_name(drift.urn)}  changed outside Stackwright", fg="yellow"))
            lines.extend("      " + line for line in full_diff_lines(drift.diffs, None, None))
    for urn, error in sorted(result.errors.items()):
        lines.append(click.style(f"  ! {urn}: {error}", fg="red"))
    real = [d for d in result.drift if d.kind != "outputs"]
    verdict = f"{len(real)} drifted." if real else "no drift."
    if result.errors:
        unread = len(result.errors)
        checked = f"Checked {result.checked} of {result.checked + unread} resources ({unread} could not be read): "
        verdict = verdict if real else "no drift in those read."
    else:
        checked = f"Checked {result.checked} resources: "
    lines.append(click.style(checked + verdict, bold=True))
    return lines


@click.command("import")
@stack_option
@click.argument("type_token", metavar="TYPE")
@click.argument("name")
@click.argument("resource_id", metavar="ID")
@yes_option("Record it without asking.")
@emergency_option
def import_(stack_name: str | None, who: str | None, type_token: str, name: str, resource_id: str,
            yes: bool, emergency: str | None) -> None:
    """Adopt an existing resource and print the Python that declares it.

    Shows what it will record and asks first. The resource is recorded protected until
    the program declares it; then the program's own `protect` applies.
    """
    from stackwright.workflow.gateway import ChangeRequest

    request = ChangeRequest("import", resource=(type_token, name, resource_id), emergency=emergency)
    result = run_state_edit(stack_name, who, request, _import_confirmer(yes)).imported
    click.echo(click.style(f"Imported {result.urn} (checkpoint {result.checkpoint}), protected until "
                           "the program declares it.", fg="green"), err=True)
    for note in result.notes:
        click.echo(f"  {note}", err=True)
    click.echo("Add this to your program:\n", err=True)
    click.echo(result.code)


def _import_confirmer(yes: bool) -> Any:
    """Shows the object as read and what will be recorded (secrets masked), then asks.
    All on stderr: stdout carries only the code to paste."""
    from stackwright.cli.render import mapping_lines

    def confirm(prompt: Any) -> bool:
        found = prompt.imported
        echo_lines([click.style(f"Import {found.type} {found.id} as {found.urn}", bold=True),
                    "  inputs:", *mapping_lines(found.inputs, "    "),
                    "  flags: protect, external (protected until the program declares it)",
                    *([f"  and it {found.adopts}"] if found.adopts else [])], err=True)
        return confirm_or_fail("Record it in the state?", yes, err=True)

    return confirm


@click.command()
@stack_option
@click.argument("number", type=int)
@yes_option()
@parallel_option
@click.option("--allow-destroy", is_flag=True,
              help="Let policy no-destroy-stateful pass deleting or replacing stateful resources (buckets, "
                   "tables, clusters). A protected resource stays refused: remove protect=True in the program.")
@emergency_option
@json_option
def rollback(stack_name: str | None, who: str | None, number: int, yes: bool, parallel: int,
             allow_destroy: bool, emergency: str | None, as_json: bool) -> None:
    """Return the stack's resources to the inputs recorded at checkpoint NUMBER."""
    from stackwright.workflow.gateway import ChangeRequest

    request = ChangeRequest("rollback", checkpoint=number, parallel=_parallel(parallel),
                            allow_destroy=allow_destroy, emergency=emergency)
    _finish(*run_change(stack_name, who, request, yes, True, as_json), f"Rollback to checkpoint {number}", as_json)
