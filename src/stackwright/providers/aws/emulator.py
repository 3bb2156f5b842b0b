"""The local cloud's server: moto, with the few fixes Stackwright's workflow depends on.

``python -m stackwright.providers.aws.emulator -H 127.0.0.1 -p PORT`` patches moto in
its own process, then runs moto's server. The fixes make moto answer as AWS does where
the difference would break a platform that works on AWS:

* CloudFormation reads YAML short forms applied to mappings and nested short forms
  (``!ImportValue {"Fn::Sub": ...}``, ``!If [c, !Ref a, !Ref b]``) as AWS does (moto
  keeps the raw YAML nodes);
* CloudFormation accepts an output whose ``Value`` is a number (``Value: 2``), which AWS
  reports as a string (moto fails the request with an internal error);
* CloudFormation stacks created or updated through change sets export their
  ``Export`` outputs and resolve ``Fn::ImportValue`` (moto does both only in
  ``CreateStack``), and report their ``Outputs``;
* a stack whose change set fails while executing ends ``ROLLBACK_COMPLETE`` (or
  ``UPDATE_ROLLBACK_COMPLETE``) with the reason as an event, as AWS reports it, instead
  of failing the ``ExecuteChangeSet`` call and staying under review;
* a stack whose export another stack imports cannot be deleted, nor can an update
  change that export's value or remove it, as in AWS (the update rolls back, keeping the
  stack's template and exports; the resources moto changed stay changed); a stack
  whose resources cannot all be deleted ends ``DELETE_FAILED`` with the reason and
  keeps its exports (moto forgets it, leaving its exports and resources behind);
  CloudFormation deletes the route tables it made (moto leaves them, and their VPC
  cannot be deleted);
* an output whose ``Condition`` is false is not exported (moto exports every output
  with an ``Export``, and fails the stack on one that names a resource the condition
  left out);
* a name CloudFormation makes up for an ``AWS::ECR::Repository`` is lower case, as
  ECR requires (moto makes up a name its own ECR then refuses);
* a target group's ``Matcher: {HttpCode: 200}`` is read as the string AWS makes of it,
  and a listener's certificate entry left empty by ``AWS::NoValue`` as no certificate
  (moto fails the stack on both);
* an ``AWS::EC2::SecurityGroupIngress`` resource that repeats a rule its group already
  has (the group's own ``SecurityGroupIngress`` list names it too, as published
  templates do to break circular references) stands for that rule instead of failing
  the stack (moto refuses the duplicate);
* every EKS cluster gets an OIDC issuer of its own (moto gives every cluster of a
  region the same one, so two clusters' IAM OIDC providers collide);
* S3 object writes and deletes are atomic with their conditions (``If-None-Match: *``,
  ``If-Match``), as in S3: moto checks the condition and then writes, in a threaded
  server, so two racing conditional writes could both pass the check. The S3 state
  store's lock and serials rely on exactly one winning.

Each patch wraps one moto method; ``moto>=5,<6`` is pinned, and the tests of the local
cloud exercise every patch, so a moto release that moves them fails those tests.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["main", "patch_moto"]


def patch_moto() -> None:
    """Apply every fix; safe to call more than once."""
    from moto.cloudformation.models import CloudFormationBackend

    if getattr(CloudFormationBackend, "_stackwright_patched", False):
        return
    _patch_yaml_short_forms()
    _patch_scalar_outputs()
    _patch_change_sets(CloudFormationBackend)
    _patch_conditional_exports()
    _patch_repeated_ingress()
    _patch_generated_names()
    _patch_listener_properties()
    _patch_route_table_delete()
    _patch_eks_issuer()
    _patch_s3_conditional_writes()
    CloudFormationBackend._stackwright_patched = True  # type: ignore[attr-defined]


# --- CloudFormation ------------------------------------------------------------------


def _patch_yaml_short_forms() -> None:
    from moto.cloudformation import models, responses

    from stackwright.providers.aws.cloudformation_template import short_form

    def yaml_tag_constructor(loader: Any, tag: str, node: Any) -> Any:
        return short_form(loader, tag.removeprefix("!"), node)

    models.yaml_tag_constructor = yaml_tag_constructor  # type: ignore[attr-defined]
    responses.yaml_tag_constructor = yaml_tag_constructor  # type: ignore[attr-defined]


def _patch_scalar_outputs() -> None:
    from moto.cloudformation.parsing import ResourceMap

    validate: Callable[[Any], None] = ResourceMap.validate_outputs

    def validate_outputs(self: Any) -> None:
        for output in (self._template.get("Outputs") or {}).values():
            if isinstance(output, dict) and isinstance(output.get("Value"), (int, float)):
                output["Value"] = str(output["Value"]).lower() if isinstance(output["Value"], bool) else str(output["Value"])
        validate(self)

    ResourceMap.validate_outputs = validate_outputs  # type: ignore[method-assign]


def _patch_change_sets(backend: Any) -> None:
    from moto.cloudformation.exceptions import ValidationError

    execute: Callable[..., None] = backend.execute_change_set
    update: Callable[..., Any] = backend.update_stack
    delete: Callable[..., None] = backend.delete_stack

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks[change_set.stack_id]
        stack.resource_map.cross_stack_resources = self.exports
        before = stack.template
        try:
            execute(self, change_set_name, stack_name)
            _publish_exports(self, stack)
        except Exception as exc:  # noqa: BLE001 - AWS reports a failed execution as a rollback
            if change_set.change_set_type == "UPDATE":
                _restore_template(stack, before)
            _roll_back(stack, change_set, exc)

    def update_stack(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        self.get_stack(name).resource_map.cross_stack_resources = self.exports
        before = self.get_stack(name).template
        stack = update(self, name, *args, **kwargs)
        try:
            _publish_exports(self, stack)
        except ValidationError as exc:  # AWS fails the update after the call, and rolls it back
            _restore_template(stack, before)
            _update_rolled_back(stack, exc)
        return stack

    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        for stack in list(self.stacks.values()):
            if name_or_stack_id in (stack.stack_id, stack.name):
                _refuse_exports_in_use(self, stack)
                _forget_unresolvable_outputs(stack)
                try:
                    delete(self, stack.stack_id)
                except Exception as exc:  # noqa: BLE001 - AWS reports it as the stack's status
                    _delete_failed(self, stack, exc)

    backend.execute_change_set = execute_change_set
    backend.update_stack = update_stack
    backend.delete_stack = delete_stack


def _publish_exports(backend: Any, stack: Any) -> None:
    """Rebuild the stack's outputs from its new template and replace its exports. As in
    AWS, an export another stack imports can neither change its value nor go away."""
    from moto.cloudformation.exceptions import ValidationError

    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()
    mine = {name for name, export in backend.exports.items() if export.exporting_stack_id == stack.stack_id}
    new = {export.name: export for export in stack.exports}
    taken = sorted(set(new) & (set(backend.exports) - mine))
    if taken:
        raise ValidationError(stack.stack_id, message=f"Export with name {taken[0]} is already exported "
                              "by another stack; export names must be unique across a region")
    changed = {name for name in mine if name in new and new[name].value != backend.exports[name].value}
    _refuse_in_use(backend, stack, changed, "Cannot update export {name} as it is in use by {user}")
    _refuse_in_use(backend, stack, mine - set(new), "Export {name} cannot be deleted as it is in use by {user}")
    for name in mine - set(new):
        backend.exports.pop(name)
    backend.exports.update(new)


def _restore_template(stack: Any, before: Any) -> None:
    """A failed update leaves the stack's template as it was (moto has already taken
    the new one when an export check refuses it)."""
    if stack.template == before:
        return
    stack.template = before
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()


def _update_rolled_back(stack: Any, exc: Exception) -> None:
    reason = str(getattr(exc, "message", "") or exc)
    stack._add_stack_event("UPDATE_FAILED", resource_status_reason=reason)
    _forget_unresolvable_outputs(stack)
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    stack.status_reason = reason
    stack._add_stack_event(stack.status)


def _roll_back(stack: Any, change_set: Any, exc: Exception) -> None:
    reason = str(getattr(exc, "message", "") or exc)
    change_set.execution_status = "EXECUTE_FAILED"
    stack._add_stack_event("CREATE_FAILED" if change_set.change_set_type == "CREATE" else "UPDATE_FAILED",
                           resource_status_reason=reason)
    if change_set.change_set_type == "CREATE":
        try:
            stack.resource_map.delete()
        except Exception:  # noqa: BLE001, S110 - half-made resources are gone with the emulator
            pass
        stack.status = "ROLLBACK_COMPLETE"
    else:
        stack.status = "UPDATE_ROLLBACK_COMPLETE"
    _forget_unresolvable_outputs(stack)
    stack.status_reason = reason
    stack._add_stack_event(stack.status)


def _delete_failed(backend: Any, stack: Any, exc: Exception) -> None:
    """The stack stays, ``DELETE_FAILED`` with the reason, its exports kept (moto
    forgets the stack, leaving its exports and resources behind)."""
    reason = str(getattr(exc, "message", "") or exc)
    backend.stacks[stack.stack_id] = stack
    stack.status = "DELETE_FAILED"
    stack.status_reason = reason
    stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason)


def _refuse_exports_in_use(backend: Any, stack: Any) -> None:
    exported = {name for name, export in backend.exports.items() if export.exporting_stack_id == stack.stack_id}
    _refuse_in_use(backend, stack, exported, "Export {name} cannot be deleted as it is in use by {user}")


def _refuse_in_use(backend: Any, stack: Any, names: set[str], message: str) -> None:
    """AWS's refusal (``message``, naming ``{name}`` and ``{user}``) when another stack
    imports one of the export ``names``."""
    from moto.cloudformation.exceptions import ValidationError

    users = _users(backend, stack, names)
    if users:
        name = min(users)
        raise ValidationError(stack.stack_id, message=message.format(name=name, user=users[name]))


def _users(backend: Any, stack: Any, names: set[str]) -> dict[str, str]:
    """Of the export ``names``, those another live stack imports, and one such stack's name."""
    users: dict[str, str] = {}
    if not names:
        return users
    for other in backend.stacks.values():
        if other is stack or other.status in ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"):
            continue  # a stack that has no resources uses no export
        for name in names & set(_imports(other)):
            users.setdefault(name, other.name)
    return users


def _forget_unresolvable_outputs(stack: Any) -> None:
    """moto recomputes a stack's outputs to describe it and its exports to delete it;
    those of a stack that failed (a ``Fn::GetAtt`` of a resource it never made) cannot
    be, and every describe and the delete would fail."""
    from moto.cloudformation.parsing import OutputMap

    try:
        stack.outputs  # noqa: B018 - computing them is the test
        stack.exports  # noqa: B018
    except Exception:  # noqa: BLE001 - such a stack exports nothing
        stack.output_map = OutputMap(stack.resource_map, {}, stack.stack_id)


def _imports(stack: Any) -> Iterator[str]:
    """The export names a live stack imports, as its resource map resolves them."""
    from moto.cloudformation.parsing import clean_json

    from stackwright.providers.aws.cloudformation_template import imported

    for name in imported(stack.template_dict.get("Resources") or {}):
        try:
            resolved = clean_json(name, stack.resource_map)
        except Exception:  # noqa: BLE001, S112 - what cannot be resolved imports nothing
            continue
        if isinstance(resolved, str):
            yield resolved


def _patch_conditional_exports() -> None:
    from moto.cloudformation.parsing import OutputMap

    every: Callable[[Any], Any] = OutputMap.exports.fget  # type: ignore[attr-defined]

    def exports(self: Any) -> Any:
        outputs = self._output_json_map
        conditions = self._resource_map.lazy_condition_map
        self._output_json_map = {key: output for key, output in (outputs or {}).items()
                                 if not (isinstance(output, dict) and "Condition" in output
                                         and not conditions.get(output["Condition"]))}
        try:
            return every(self)
        finally:
            self._output_json_map = outputs

    OutputMap.exports = property(exports)  # type: ignore[method-assign,assignment]


def _patch_generated_names() -> None:
    from moto.cloudformation import parsing

    generate: Callable[[str, str, str], str] = parsing.generate_resource_name
    lower_case = frozenset({"AWS::ECR::Repository"})

    def generate_resource_name(resource_type: str, stack_name: str, logical_id: str) -> str:
        name = generate(resource_type, stack_name, logical_id)
        return name.lower() if resource_type in lower_case else name

    parsing.generate_resource_name = generate_resource_name


def _patch_listener_properties() -> None:
    """Target groups and listeners read their properties as AWS does: a numeric
    ``Matcher`` code is a string, and a certificate entry left empty (its
    ``CertificateArn`` was ``AWS::NoValue``) is no certificate."""
    from moto.elbv2.models import FakeListener, FakeTargetGroup

    def matcher(properties: dict[str, Any]) -> None:
        found = properties.get("Matcher")
        if isinstance(found, dict):
            found.update({k: str(v) for k, v in found.items() if isinstance(v, int)})

    def certificates(properties: dict[str, Any]) -> None:
        if isinstance(properties.get("Certificates"), list):
            properties["Certificates"] = [c for c in properties["Certificates"]
                                          if not isinstance(c, dict) or c.get("CertificateArn")]

    _before_create(FakeTargetGroup, matcher)
    _before_create(FakeListener, certificates)


def _before_create(model: Any, fix: Callable[[dict[str, Any]], None]) -> None:
    """``fix`` the properties of every ``model`` CloudFormation creates, first."""
    create: Callable[..., Any] = model.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: Any,
                                        *args: Any, **kwargs: Any) -> Any:
        fix(cloudformation_json.setdefault("Properties", {}))
        return create(cls, resource_name, cloudformation_json, *args, **kwargs)

    model.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def _patch_route_table_delete() -> None:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.route_tables import RouteTable

    def delete(self: Any, account_id: str, region_name: str) -> None:
        ec2_backends[account_id][region_name].delete_route_table(self.id)

    RouteTable.delete = delete  # type: ignore[attr-defined]


def _patch_repeated_ingress() -> None:
    from moto.ec2.exceptions import InvalidPermissionDuplicateError
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.security_groups import SecurityGroupIngress

    create: Callable[..., Any] = SecurityGroupIngress.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: Any,
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        try:
            return create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        except InvalidPermissionDuplicateError:
            properties = cloudformation_json["Properties"]
            backend = ec2_backends[account_id][region_name]
            if properties.get("GroupId"):
                groups = backend.describe_security_groups(group_ids=[properties["GroupId"]])
            else:
                groups = backend.describe_security_groups(groupnames=[properties.get("GroupName")])
            return cls(groups[0], properties)

    SecurityGroupIngress.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[method-assign,assignment,arg-type]


# --- S3 ------------------------------------------------------------------------------


def _patch_s3_conditional_writes() -> None:
    """One lock around every object write and delete, so a condition checked by one
    request still holds when that request writes."""
    import threading

    from moto.s3.responses import S3Response

    lock = threading.RLock()

    def atomic(method: Callable[..., Any]) -> Callable[..., Any]:
        def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(self, *args, **kwargs)
        return locked

    for name in ("put_object", "copy_object", "delete_object", "_key_response_post"):
        setattr(S3Response, name, atomic(getattr(S3Response, name)))


# --- EKS -----------------------------------------------------------------------------


def _patch_eks_issuer() -> None:
    from moto.eks.models import Cluster

    init: Callable[..., None] = Cluster.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        region = kwargs.get("region_name") or self.arn.split(":")[3]
        self.identity = {"oidc": {"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{uuid.uuid4().hex.upper()}"}}

    Cluster.__init__ = __init__  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    patch_moto()
    from moto.server import main as serve

    serve(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
