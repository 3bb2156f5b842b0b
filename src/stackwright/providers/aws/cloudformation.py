"""CloudFormation stacks, created and updated through change sets.

A change set is named after ``ctx.token``, so a retried create or update finds the
change set its earlier attempt made instead of making a second one. "Didn't contain
changes" and "No updates are to be performed", wherever CloudFormation says them, mean
no change. A stack whose create fails (its change set cannot execute, or it rolls
back) is deleted before the error is raised, so the next run creates it afresh.

Templates may be given as a dict or as a JSON/YAML string (with the ``!Ref`` style
short forms); they are compared as documents, never as text. Parameters are checked
against the template's ``Parameters`` when the plan is made, and a stack that imports
an export of another stack of the program is ordered after it (``links``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.values import is_unknown
from stackwright.model.resource import Resource
from stackwright.providers.aws.base import (
    AwsResource,
    all_tags,
    call,
    call_or_none,
    claim,
    error_code,
    is_ours,
    own_tags,
    tag_dict,
    tag_list,
)
from stackwright.providers.aws.cloudformation_template import (
    check_parameters,
    parse_template,
    same_template,
    template_body,
    template_links,
)
from stackwright.providers.aws.common import reject_urn_tag, with_defaults
from stackwright.providers.common import wait_until
from stackwright.providers.protocol import Created, DiffResult, Links, OperationContext, ReadResult

__all__ = ["RESOURCE_PROVIDERS", "Stack", "StackProvider", "parse_template", "template_body", "template_links"]

CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
SUCCEEDED = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
DEAD = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"})
"""States a create cannot build on: the stack has to be deleted first."""
CHANGE_SET_DONE = frozenset({"CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE", "DELETE_FAILED"})
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
FAILED_EVENTS = 3
"""How many failed resource events a failure message quotes."""


class Stack(Resource, type="aws:cloudformation:Stack"):
    """A CloudFormation stack from ``template`` (a dict, or a JSON or YAML string)."""

    name: str
    template: dict[str, Any] | str
    parameters: dict[str, str] = {}
    capabilities: list[str] = []
    tags: dict[str, str] = {}
    outputs: Output[dict[str, str]]
    stack_id: Output[str]
    status: Output[str]


def _short_token(token: str) -> str:
    """A digest of ``ctx.token`` that fits CloudFormation's name and token patterns."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _says_no_changes(text: Any) -> bool:
    return any(phrase in str(text or "") for phrase in NO_CHANGES)


def _no_changes(change_set: Mapping[str, Any]) -> bool:
    return change_set.get("Status") == "FAILED" and _says_no_changes(change_set.get("StatusReason"))


# --- the provider -------------------------------------------------------------------


class StackProvider(AwsResource):
    """``aws:cloudformation:Stack``; the id is the stack id (its ARN)."""

    service = "cloudformation"
    type_token = "aws:cloudformation:Stack"
    resource_class = Stack
    replace_on = frozenset({"name"})
    computed_on_update = frozenset({"outputs", "status"})
    stateful = False

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(Stack, inputs)
        template = parse_template(values["template"])
        if "Resources" not in template:
            raise InputError("template has no 'Resources' section", prop="template")
        unknown = set(values["capabilities"]) - set(CAPABILITIES)
        if unknown:
            raise InputError(f"unknown capabilities {sorted(unknown)}", prop="capabilities",
                             hint=f"known: {', '.join(CAPABILITIES)}")
        values["capabilities"] = sorted(set(values["capabilities"]))
        values["parameters"] = {str(k): str(v) for k, v in values["parameters"].items()}
        check_parameters(str(values["name"]), template, values["parameters"])
        reject_urn_tag(values["tags"])
        return values

    def links(self, inputs: Mapping[str, Any]) -> Links:
        template, parameters = inputs.get("template"), inputs.get("parameters") or {}
        if is_unknown(template) or not isinstance(template, (str, Mapping)) or not isinstance(parameters, Mapping):
            return Links()
        try:
            return template_links(template, parameters, inputs.get("name"), self.clients.region)
        except InputError:
            return Links()  # check() reports the broken template with its resource

    def diff(
        self, old_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any],
        new_inputs: Mapping[str, Any],
    ) -> DiffResult:
        result = super().diff(old_inputs, old_outputs, new_inputs)
        if "template" in result.changed and same_template(old_inputs.get("template"), new_inputs.get("template")):
            changed = tuple(k for k in result.changed if k != "template")
            replaces = tuple(k for k in result.replaces if k != "template")
            return DiffResult(changed, replaces, result.delete_before_replace)
        return result

    # --- create ---------------------------------------------------------------------

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        earlier = self._prepare(ctx, values["name"])
        if earlier is not None and earlier["StackStatus"] != "REVIEW_IN_PROGRESS":
            self._change(ctx, earlier["StackName"], values, "UPDATE")  # an earlier attempt's stack
            stack_id = str(earlier["StackId"])
        else:
            stack_id = self._change(ctx, values["name"], values, "CREATE")
        return Created(stack_id, self._outputs(self._settled(ctx, stack_id)))

    def _prepare(self, ctx: OperationContext, name: str) -> dict[str, Any] | None:
        """The stack an earlier attempt of this create left, settled; None if there is
        none (or it was dead and has been deleted)."""
        stack = self._describe(name)
        if stack is None:
            return None
        claim("stack", name, all_tags(stack.get("Tags")), ctx)
        settled = self._settled_or_gone(ctx, stack["StackId"], review_is_settled=True)
        if settled is not None and settled["StackStatus"] in DEAD:
            ctx.log(f"deleting stack {name} left {settled['StackStatus']} by an earlier attempt")
            self._delete_and_wait(ctx, settled["StackId"])
            return None
        return settled

    # --- change sets ----------------------------------------------------------------

    def _change(self, ctx: OperationContext, stack: str, values: Mapping[str, Any], kind: str) -> str:
        """Create (or find), wait for and execute a change set; the stack id.

        ``stack`` is the stack's name: a live stack's name is as unique as its id, and
        moto only finds stacks by name when creating change sets."""
        name = f"stackwright-{kind.lower()}-{_short_token(ctx.token)}"
        change_set = self._find_change_set(stack, name) or self._create_change_set(
            ctx, stack, name, values, kind, client_token=_short_token(ctx.token + kind))
        if change_set is None:  # "No updates are to be performed"
            return self._unchanged(ctx, stack, values)
        change_set = self._wait_change_set(ctx, change_set["ChangeSetId"])
        stack_id = str(change_set["StackId"])
        if change_set["Status"] == "FAILED":
            call_or_none("delete change set", self.client.delete_change_set, ChangeSetName=change_set["ChangeSetId"])
            if not _no_changes(change_set):
                if kind == "CREATE":  # leave no empty stack under review behind
                    self._delete_and_wait(ctx, stack_id)
                reason = change_set.get("StatusReason")
                raise ProviderError(f"change set for stack {values['name']!r} failed: {reason}")
            return self._unchanged(ctx, stack_id, values)
        if change_set.get("ExecutionStatus") == "AVAILABLE":
            self._execute(ctx, change_set, values, kind)
        self._wait_executed(ctx, change_set["ChangeSetId"])
        final = self._settled(ctx, stack_id)
        if final["StackStatus"] not in SUCCEEDED:
            raise self._failure(ctx, final, kind)
        return stack_id

    def _unchanged(self, ctx: OperationContext, stack: str, values: Mapping[str, Any]) -> str:
        """The stack id of a stack CloudFormation found nothing to change in, its tags set."""
        found = self._describe(stack)
        if found is None:
            raise ProviderError(f"stack {values['name']!r} disappeared while it was being updated")
        self._update_tags(ctx, str(found["StackId"]), values)
        return str(found["StackId"])

    def _execute(self, ctx: OperationContext, change_set: Mapping[str, Any], values: Mapping[str, Any],
                 kind: str) -> None:
        """Execute the change set; a create that CloudFormation refuses to execute leaves
        no stack behind. Any other failure (retryable, or no answer at all) keeps the
        stack and its change set for the retry."""
        try:
            call(f"execute change set of stack {values['name']}", self.client.execute_change_set,
                 ChangeSetName=change_set["ChangeSetId"], ClientRequestToken=_short_token(ctx.token + kind))
        except ProviderError as err:
            if kind == "CREATE" and not err.retryable and error_code(err.__cause__ or err):
                self._delete_and_wait(ctx, str(change_set["StackId"]))
                raise ProviderError(f"{err.message} (the stack was deleted, so the next run creates it afresh)",
                                    retryable=False) from err
            raise

    def _create_change_set(
        self, ctx: OperationContext, stack: str, name: str, values: Mapping[str, Any], kind: str,
        client_token: str | None = None,
    ) -> dict[str, Any] | None:
        """The new change set's ids; None when CloudFormation answers that there is
        nothing to change."""
        kwargs: dict[str, Any] = {
            "StackName": stack, "ChangeSetName": name, "ChangeSetType": kind,
            "TemplateBody": template_body(values["template"]),
            "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                           for k, v in sorted(values["parameters"].items())],
            "Capabilities": values["capabilities"], "Tags": tag_list(values["tags"], ctx),
        }
        if client_token:
            kwargs["ClientToken"] = client_token
        try:
            got = call(f"create change set for stack {values['name']}", self.client.create_change_set, **kwargs)
        except ProviderError as err:
            if _says_no_changes(err.message):
                return None
            raise
        return {"ChangeSetId": got["Id"], "StackId": got["StackId"]}

    def _find_change_set(self, stack: str, name: str) -> dict[str, Any] | None:
        """An earlier attempt's change set, if it can still be used; a spent one is
        deleted so that its name is free again."""
        got = call_or_none(f"find change set {name}", self.client.describe_change_set,
                           StackName=stack, ChangeSetName=name)
        if got is None or got.get("Status") in ("DELETE_COMPLETE", "DELETE_PENDING", "DELETE_IN_PROGRESS"):
            return None
        if self._describe(got["StackId"]) is None:
            return None  # it belonged to a stack since deleted (moto still answers for those)
        if got.get("Status") == "FAILED" or got.get("ExecutionStatus") == "OBSOLETE":
            call_or_none("delete spent change set", self.client.delete_change_set, ChangeSetName=got["ChangeSetId"])
            return None
        return dict(got)

    def _wait_change_set(self, ctx: OperationContext, change_set_id: str) -> dict[str, Any]:
        latest: dict[str, Any] = {}

        def done() -> bool:
            latest.update(call("describe change set", self.client.describe_change_set,
                               ChangeSetName=change_set_id))
            return latest.get("Status") in CHANGE_SET_DONE

        wait_until(ctx, "change set to be ready", done, interval=5.0)
        return latest

    def _wait_executed(self, ctx: OperationContext, change_set_id: str) -> None:
        """Until execution started; otherwise the stack may still show its old, settled status."""

        def started() -> bool:
            got = call_or_none("describe change set", self.client.describe_change_set,
                               ChangeSetName=change_set_id)
            return got is None or got.get("ExecutionStatus") not in ("AVAILABLE", "UNAVAILABLE")

        wait_until(ctx, "change set execution to start", started, interval=5.0)

    def _update_tags(self, ctx: OperationContext, stack_id: str, values: Mapping[str, Any]) -> None:
        """A change set may see no changes when only the stack's tags differ; UpdateStack
        with the same template applies them."""
        stack = self._describe(stack_id) or {}
        wanted = {**values["tags"], **own_tags(ctx)}
        if all_tags(stack.get("Tags")) == wanted:
            return
        try:
            call(f"update tags of stack {values['name']}", self.client.update_stack, StackName=stack_id,
                 TemplateBody=template_body(values["template"]), Capabilities=values["capabilities"],
                 Parameters=[{"ParameterKey": k, "ParameterValue": v}
                             for k, v in sorted(values["parameters"].items())],
                 Tags=tag_list(values["tags"], ctx))
        except ProviderError as err:
            if not _says_no_changes(err.message):
                raise
            return
        final = self._settled(ctx, stack_id)
        if final["StackStatus"] not in SUCCEEDED:
            raise self._failure(ctx, final, "UPDATE")

    # --- stacks ---------------------------------------------------------------------

    def _describe(self, name_or_id: str) -> dict[str, Any] | None:
        """The stack, or None when there is none (deleted stacks count as none)."""
        got = call_or_none(f"describe stack {name_or_id}", self.client.describe_stacks, StackName=name_or_id)
        stacks = (got or {}).get("Stacks") or []
        if not stacks or stacks[0].get("StackStatus") == "DELETE_COMPLETE":
            return None
        return dict(stacks[0])

    def _settled_or_gone(
        self, ctx: OperationContext, stack_id: str, review_is_settled: bool = False,
    ) -> dict[str, Any] | None:
        """The stack once no operation is in progress on it; None if it was being deleted."""
        latest: list[dict[str, Any] | None] = [None]

        def done() -> bool:
            latest[0] = stack = self._describe(stack_id)
            if stack is None:
                return True
            status = str(stack["StackStatus"])
            return not status.endswith("_IN_PROGRESS") or (review_is_settled and status == "REVIEW_IN_PROGRESS")

        wait_until(ctx, f"stack {stack_id.split('/')[1] if '/' in stack_id else stack_id}", done, interval=5.0)
        return latest[0]

    def _settled(self, ctx: OperationContext, stack_id: str) -> dict[str, Any]:
        stack = self._settled_or_gone(ctx, stack_id)
        if stack is None:
            raise ProviderError(f"stack {stack_id} was deleted while Stackwright waited for it")
        return stack

    def _failure(self, ctx: OperationContext, stack: Mapping[str, Any], kind: str) -> ProviderError:
        """Name the status, its reason and the first failed resources; a stack whose
        create failed is deleted, since CloudFormation can never update it."""
        said = stack.get("StackStatusReason") or "no reason given"
        reasons = [r for r in self._failed_events(stack["StackId"]) if not r.endswith(f": {said}")]
        message = f"stack {stack['StackName']!r} ended {stack['StackStatus']}: {said}"
        if reasons:
            message += "; " + "; ".join(reasons)
        if kind == "CREATE" and stack["StackStatus"] in DEAD:
            try:
                self._delete_and_wait(ctx, str(stack["StackId"]))
            except ProviderError as err:  # the failure stays the news; never create again on top
                return ProviderError(f"{message}; deleting the failed stack failed too: {err.message}",
                                     hint="the next run deletes it first; if that fails again, delete "
                                     "the stack's resources by hand")
            message += " (the failed stack was deleted, so the next run creates it afresh)"
        return ProviderError(message)

    def _failed_events(self, stack_id: str) -> list[str]:
        """Failed resource events of the latest operation, oldest first."""
        got = call_or_none("describe stack events", self.client.describe_stack_events, StackName=stack_id)
        found: list[str] = []
        for event in (got or {}).get("StackEvents") or []:
            if event.get("ResourceStatusReason") == "User Initiated":
                break
            status, reason = str(event.get("ResourceStatus", "")), event.get("ResourceStatusReason")
            if status.endswith("_FAILED") and reason and "cancelled" not in reason:
                found.append(f"{event.get('LogicalResourceId')}: {reason}")
        return list(reversed(found))[:FAILED_EVENTS]

    def _outputs(self, stack: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "outputs": {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []},
            "stack_id": stack["StackId"],
            "status": stack["StackStatus"],
        }

    # --- read -----------------------------------------------------------------------

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        stack = self._describe(id or str(inputs.get("name", "")))
        if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS":
            return None  # a stack under review has no resources yet: create again
        tags = all_tags(stack.get("Tags"))
        if id is None and (not is_ours(tags, ctx) or stack["StackStatus"] in DEAD):
            return None
        return ReadResult(stack["StackId"], self._live_inputs(stack, tags, inputs), self._outputs(stack))

    def _live_inputs(self, stack: Mapping[str, Any], tags: Mapping[str, str],
                     declared: Mapping[str, Any]) -> dict[str, Any]:
        got = call("get template", self.client.get_template, StackName=stack["StackId"], TemplateStage="Original")
        live = got["TemplateBody"]
        live = live if isinstance(live, str) else json.loads(json.dumps(live))
        mine = declared.get("template")
        template = mine if mine is not None and same_template(mine, live) else live
        return {
            "name": stack["StackName"],
            "template": template,
            "parameters": self._live_parameters(stack, parse_template(live), declared.get("parameters") or {}),
            "capabilities": self._capabilities(stack, declared),
            "tags": tag_dict(tag_list(tags)),
        }

    @staticmethod
    def _capabilities(stack: Mapping[str, Any], declared: Mapping[str, Any]) -> list[str]:
        """What was declared: capabilities acknowledge what a template may do and are
        not a property of the stack to drift (moto reports none, AWS what the last
        operation was given). An import, with nothing declared, gets the live ones."""
        if "capabilities" in declared:
            return sorted(set(declared["capabilities"] or []))
        return sorted(stack.get("Capabilities") or [])

    @staticmethod
    def _live_parameters(stack: Mapping[str, Any], template: Mapping[str, Any],
                         declared: Mapping[str, str]) -> dict[str, str]:
        """Parameters that were set: declared ones, and any whose value is not the
        template's default. NoEcho values read as ``****``; the declared value stands."""
        defaults = {k: str(v["Default"]) for k, v in (template.get("Parameters") or {}).items()
                    if isinstance(v, Mapping) and "Default" in v}
        params: dict[str, str] = {}
        for param in stack.get("Parameters") or []:
            key, value = param["ParameterKey"], param.get("ParameterValue", "")
            if value == "****" and key in declared:
                value = declared[key]
            if key in declared or defaults.get(key) != value:
                params[key] = value
        return params

    # --- preview --------------------------------------------------------------------

    explains_updates = True

    def explain_update(self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
                       new_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any] | None = None) -> list[str]:
        """The change set CloudFormation would execute, one line per resource change."""
        changes = self.preview_changes(ctx, id, new_inputs)
        if not changes:
            return ["change set: no resource changes"]
        return [f"change set: {c['action']} {c['logical_id']} ({c['type']})"
                + (f" replacement: {c['replacement']}" if c.get("replacement") not in (None, "False") else "")
                for c in changes]

    def preview_changes(self, ctx: OperationContext, id: str, new_inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """What an update would do, from a change set that is never executed."""
        values = self.check(new_inputs)
        stack = self._describe(id)
        if stack is None:
            raise ProviderError(f"stack {id} does not exist; nothing to preview against")
        name = f"stackwright-preview-{uuid.uuid4().hex[:16]}"
        created = self._create_change_set(ctx, stack["StackName"], name, values, "UPDATE")
        if created is None:
            return []
        try:
            change_set = self._wait_change_set(ctx, created["ChangeSetId"])
            if _no_changes(change_set):
                return []
            if change_set["Status"] == "FAILED":
                raise ProviderError(f"previewing stack {values['name']!r}: {change_set.get('StatusReason')}")
            return self._changes(created["ChangeSetId"])
        finally:
            call_or_none("delete preview change set", self.client.delete_change_set,
                         ChangeSetName=created["ChangeSetId"])

    def _changes(self, change_set_id: str) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ChangeSetName": change_set_id}
        while True:
            page = call("describe change set", self.client.describe_change_set, **kwargs)
            for change in page.get("Changes") or []:
                rc = change.get("ResourceChange") or {}
                changes.append({"action": rc.get("Action"), "logical_id": rc.get("LogicalResourceId"),
                                "type": rc.get("ResourceType"), "replacement": rc.get("Replacement")})
            if not page.get("NextToken"):
                return changes
            kwargs["NextToken"] = page["NextToken"]

    # --- update / delete ------------------------------------------------------------

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        values = self.check(new_inputs)
        stack = self._settled(ctx, id)
        self._change(ctx, stack["StackName"], values, "UPDATE")
        return self._outputs(self._settled(ctx, id))

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        if self._settled_or_gone(ctx, id, review_is_settled=True) is not None:
            self._delete_and_wait(ctx, id)

    def _delete_and_wait(self, ctx: OperationContext, stack_id: str) -> None:
        call_or_none(f"delete stack {stack_id}", self.client.delete_stack, StackName=stack_id)

        def gone() -> bool:
            stack = self._describe(stack_id)
            if stack is not None and stack["StackStatus"] == "DELETE_FAILED":
                raise self._failure(ctx, stack, "DELETE")
            return stack is None

        wait_until(ctx, f"stack {stack_id} to be deleted", gone, interval=5.0)


RESOURCE_PROVIDERS: list[type[AwsResource]] = [StackProvider]
