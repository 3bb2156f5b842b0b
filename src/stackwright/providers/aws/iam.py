"""IAM: roles, managed policies, their attachments and inline role policies.

Policy documents are plain Python dicts. ``diff`` compares them by meaning, not by
spelling: ``"Action": "s3:GetObject"`` equals ``"Action": ["s3:GetObject"]``, and the
order of actions, resources and statements does not matter. ``read`` reports the
document AWS holds, which is the one that was sent.

IAM names are unique in an account, so an object of ours is found again by its name
and recognised by its URN tag; a create that finds the name already taken by an
object carrying its own URN adopts it, so a retried create never fails on itself.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from stackwright.errors import InputError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.aws.base import (
    AwsResource,
    all_tags,
    call,
    call_or_none,
    claim,
    is_ours,
    tag_changes,
    tag_dict,
    tag_list,
)
from stackwright.providers.aws.common import ManagedResource, create_or_adopt, when_known
from stackwright.providers.protocol import Created, DiffResult, OperationContext, ReadResult

__all__ = [
    "OpenIdConnectProvider", "OpenIdConnectProviderProvider", "Policy", "PolicyProvider", "RESOURCE_PROVIDERS", "Role", "RolePolicy",
    "RolePolicyAttachment", "RolePolicyAttachmentProvider", "RolePolicyProvider",
    "RoleProvider", "semantic_policy",
]

MAX_POLICY_VERSIONS = 5
"""IAM keeps at most five versions of a managed policy."""

TAKEN = frozenset({"EntityAlreadyExists"})
"""IAM's answer to a create whose name is in use."""


# --- policy documents ---------------------------------------------------------------


_LIST_KEYS = ("Action", "NotAction", "Resource", "NotResource")


def _string_set(value: Any) -> Any:
    """A string or list of strings as a sorted list without repeats."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(set(value))
    return value


def _semantic_statement(statement: Any) -> Any:
    if not isinstance(statement, Mapping):
        return statement
    canon = dict(statement)
    for key in _LIST_KEYS:
        if key in canon:
            canon[key] = _string_set(canon[key])
    for key in ("Principal", "NotPrincipal"):
        if isinstance(canon.get(key), Mapping):
            canon[key] = {k: _string_set(v) for k, v in canon[key].items()}
    if isinstance(canon.get("Condition"), Mapping):
        canon["Condition"] = {
            op: {k: _string_set(v) for k, v in tests.items()} if isinstance(tests, Mapping) else tests
            for op, tests in canon["Condition"].items()
        }
    return canon


def semantic_policy(document: Any) -> Any:
    """The document in a form where equal meaning is equal value (for comparing only)."""
    if not isinstance(document, Mapping):
        return document
    canon = dict(document)
    statements = canon.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if isinstance(statements, list):
        canon["Statement"] = sorted((_semantic_statement(s) for s in statements),
                                    key=lambda s: json.dumps(s, sort_keys=True, default=str))
    return canon


def policy_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def parse_policy(document: Any) -> Any:
    """boto3 decodes IAM documents to dicts; other clients hand back URL-encoded JSON."""
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document


def check_policy(document: Any, prop: str) -> None:
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise InputError(f"{prop} must be a policy document (a dict with a 'Statement')", prop=prop,
                         hint='{"Version": "2012-10-17", "Statement": [...]}')


# --- shared -------------------------------------------------------------------------


class IamResource(ManagedResource):
    """Policy documents compared by meaning; tags of all IAM kinds handled alike."""

    service = "iam"
    documents: ClassVar[tuple[str, ...]] = ()
    """Inputs that are policy documents."""

    def validate(self, values: Mapping[str, Any]) -> None:
        for key in self.documents:
            check_policy(values.get(key), key)
        path = values.get("path", "/")
        if not isinstance(path, str) or not (path.startswith("/") and path.endswith("/")):
            raise InputError(f"path must begin and end with '/', got {path!r}", prop="path",
                             hint="e.g. '/' or '/eks/'")

    def diff(
        self, old_inputs: Mapping[str, Any], old_outputs: Mapping[str, Any],
        new_inputs: Mapping[str, Any],
    ) -> DiffResult:
        return super().diff(self._semantic(old_inputs), old_outputs, self._semantic(new_inputs))

    def _semantic(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(inputs)
        for key in self.documents:
            if key in values:
                values[key] = when_known(values[key], semantic_policy)
        return values

    def sync_tags(self, kind: str, id_arg: dict[str, str], old: Mapping[str, str],
                  new: Mapping[str, str]) -> None:
        """``kind`` is ``role`` or ``policy``: IAM has one tag call pair per kind."""
        gone, changed = tag_changes(old, new)
        if gone:
            call(f"untag {kind}", getattr(self.client, f"untag_{kind}"), **id_arg, TagKeys=gone)
        if changed:
            call(f"tag {kind}", getattr(self.client, f"tag_{kind}"), **id_arg, Tags=tag_list(changed))


def paged(client: Any, operation: str, key: str, **kwargs: Any) -> Callable[[], list[Any]]:
    """A call that gathers every page of a list operation."""
    def gather() -> list[Any]:
        pages = client.get_paginator(operation).paginate(**kwargs)
        return [item for page in pages for item in page.get(key, [])]
    return gather


# --- Role ---------------------------------------------------------------------------


class Role(Resource, type="aws:iam:Role"):
    """An identity that trusted principals assume; ``assume_role_policy`` names them."""

    name: str
    assume_role_policy: dict[str, Any]
    description: str = ""
    max_session_duration: int = 3600
    path: str = "/"
    tags: dict[str, str] = {}
    arn: Output[str]
    unique_id: Output[str]


class RoleProvider(IamResource):
    """Id: the role name."""

    type_token = "aws:iam:Role"
    resource_class = Role
    replace_on = frozenset({"name", "path"})
    unique_keys = ("name",)
    documents = ("assume_role_policy",)

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        args: dict[str, Any] = {
            "RoleName": inputs["name"], "Path": inputs.get("path") or "/",
            "AssumeRolePolicyDocument": policy_json(inputs["assume_role_policy"]),
            "MaxSessionDuration": int(inputs.get("max_session_duration") or 3600),
            "Tags": tag_list(inputs.get("tags") or {}, ctx),
        }
        if inputs.get("description"):
            args["Description"] = inputs["description"]
        role = create_or_adopt(
            f"create role {inputs['name']}",
            lambda: self.client.create_role(**args)["Role"], TAKEN, lambda: self._taken(ctx, inputs))
        return Created(role["RoleName"], _role_outputs(role))

    def describe(self, id: str) -> dict[str, Any] | None:
        answer = call_or_none(f"read role {id}", self.client.get_role, RoleName=id)
        if answer is None:
            return None
        role = dict(answer["Role"])
        if "Tags" not in role:  # GetRole lists them; an emulator may not
            role["Tags"] = call(f"read tags of role {id}",
                                paged(self.client, "list_role_tags", "Tags", RoleName=id))
        return role

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        role = self.describe(str(inputs.get("name")))
        return [role] if role and is_ours(all_tags(role.get("Tags")), ctx) else []

    def _taken(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The role a create found under its name: this state's own, or ``claim`` refuses it."""
        role = self.describe(str(inputs["name"]))
        if role is not None:
            claim("role", role["RoleName"], all_tags(role.get("Tags")), ctx)
        return role

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        live = {
            "name": raw["RoleName"],
            "assume_role_policy": parse_policy(raw.get("AssumeRolePolicyDocument")),
            "description": raw.get("Description") or "",
            "max_session_duration": int(raw.get("MaxSessionDuration", 3600)),
            "path": raw.get("Path", "/"), "tags": tag_dict(raw.get("Tags")),
        }
        return ReadResult(raw["RoleName"], live, _role_outputs(raw))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = self._semantic(old_inputs), self._semantic(new_inputs)
        if old.get("assume_role_policy") != new.get("assume_role_policy"):
            call(f"update trust policy of {id}", self.client.update_assume_role_policy,
                 RoleName=id, PolicyDocument=policy_json(new_inputs["assume_role_policy"]))
        settings = ("description", "max_session_duration")
        if any(old_inputs.get(k) != new_inputs.get(k) for k in settings):
            call(f"update role {id}", self.client.update_role, RoleName=id,
                 Description=new_inputs.get("description") or "",
                 MaxSessionDuration=int(new_inputs.get("max_session_duration") or 3600))
        self.sync_tags("role", {"RoleName": id}, old_inputs.get("tags") or {},
                       new_inputs.get("tags") or {})
        return {}

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        """Attachments and inline policies are resources of their own, deleted first."""
        call_or_none(f"delete role {id}", self.client.delete_role, RoleName=id)


def _role_outputs(role: Mapping[str, Any]) -> dict[str, Any]:
    return {"arn": role["Arn"], "unique_id": role["RoleId"]}


# --- Policy -------------------------------------------------------------------------


class Policy(Resource, type="aws:iam:Policy"):
    """A managed policy; changing its document adds a new default version."""

    name: str
    policy: dict[str, Any]
    path: str = "/"
    description: str = ""
    tags: dict[str, str] = {}
    arn: Output[str]
    policy_id: Output[str]
    default_version_id: Output[str]


class PolicyProvider(IamResource):
    """Id: the policy ARN."""

    type_token = "aws:iam:Policy"
    resource_class = Policy
    replace_on = frozenset({"name", "path", "description"})
    unique_keys = ("name",)
    documents = ("policy",)
    computed_on_update = frozenset({"default_version_id"})

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        args: dict[str, Any] = {
            "PolicyName": inputs["name"], "Path": inputs.get("path") or "/",
            "PolicyDocument": policy_json(inputs["policy"]),
            "Tags": tag_list(inputs.get("tags") or {}, ctx),
        }
        if inputs.get("description"):
            args["Description"] = inputs["description"]
        policy = create_or_adopt(
            f"create policy {inputs['name']}",
            lambda: self.client.create_policy(**args)["Policy"], TAKEN, lambda: self._taken(ctx, inputs))
        return Created(policy["Arn"], _policy_outputs(policy))

    def describe(self, id: str) -> dict[str, Any] | None:
        answer = call_or_none(f"read policy {id}", self.client.get_policy, PolicyArn=id)
        if answer is None:
            return None
        policy = dict(answer["Policy"])
        version = call_or_none(f"read policy {id}", self.client.get_policy_version,
                               PolicyArn=id, VersionId=policy["DefaultVersionId"])
        if version is None:
            return None
        policy["Document"] = parse_policy(version["PolicyVersion"]["Document"])
        if "Tags" not in policy:  # GetPolicy lists them; an emulator may not
            policy["Tags"] = call(f"read tags of policy {id}",
                                  paged(self.client, "list_policy_tags", "Tags", PolicyArn=id))
        return policy

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        """By name among the account's own policies under the path, if ours."""
        return [policy for policy in self._named(inputs) if is_ours(all_tags(policy.get("Tags")), ctx)]

    def _named(self, inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        listed = call(f"find policy {inputs.get('name')}", paged(
            self.client, "list_policies", "Policies", Scope="Local",
            PathPrefix=str(inputs.get("path") or "/")))
        described = [self.describe(s["Arn"]) for s in listed if s["PolicyName"] == inputs.get("name")]
        return [policy for policy in described if policy is not None]

    def _taken(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The policy a create found under its name: this state's own, or ``claim`` refuses it."""
        named = self._named(inputs)
        if named:
            claim("policy", named[0]["PolicyName"], all_tags(named[0].get("Tags")), ctx)
        return named[0] if named else None

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        live = {
            "name": raw["PolicyName"], "policy": raw["Document"], "path": raw.get("Path", "/"),
            "description": raw.get("Description") or "", "tags": tag_dict(raw.get("Tags")),
        }
        return ReadResult(raw["Arn"], live, _policy_outputs(raw))

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        outputs: dict[str, Any] = {}
        if self._semantic(old_inputs).get("policy") != self._semantic(new_inputs).get("policy"):
            self._make_room(id)
            version = call(f"add a version to {id}", self.client.create_policy_version,
                           PolicyArn=id, PolicyDocument=policy_json(new_inputs["policy"]),
                           SetAsDefault=True)["PolicyVersion"]
            outputs["default_version_id"] = version["VersionId"]
        else:
            outputs["default_version_id"] = old_outputs.get("default_version_id")
        self.sync_tags("policy", {"PolicyArn": id}, old_inputs.get("tags") or {},
                       new_inputs.get("tags") or {})
        return outputs

    def _versions(self, arn: str) -> list[dict[str, Any]]:
        return list(call(f"list versions of {arn}",
                         paged(self.client, "list_policy_versions", "Versions", PolicyArn=arn)))

    def _make_room(self, arn: str) -> None:
        """With five versions kept, the oldest one not in use goes."""
        versions = self._versions(arn)
        if len(versions) < MAX_POLICY_VERSIONS:
            return
        old = [v for v in versions if not v.get("IsDefaultVersion")]
        oldest = min(old, key=lambda v: (v.get("CreateDate"), _version_number(v["VersionId"])))
        call_or_none(f"delete version {oldest['VersionId']} of {arn}",
                     self.client.delete_policy_version, PolicyArn=arn, VersionId=oldest["VersionId"])

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        """IAM refuses to delete a policy that has versions besides the default."""
        versions = call_or_none(f"list versions of {id}",
                                paged(self.client, "list_policy_versions", "Versions", PolicyArn=id))
        for version in versions or []:
            if not version.get("IsDefaultVersion"):
                call_or_none(f"delete version {version['VersionId']} of {id}",
                             self.client.delete_policy_version, PolicyArn=id,
                             VersionId=version["VersionId"])
        call_or_none(f"delete policy {id}", self.client.delete_policy, PolicyArn=id)


def _version_number(version_id: str) -> int:
    digits = version_id.lstrip("v")
    return int(digits) if digits.isdigit() else 0


def _policy_outputs(policy: Mapping[str, Any]) -> dict[str, Any]:
    return {"arn": policy["Arn"], "policy_id": policy.get("PolicyId", ""),
            "default_version_id": policy.get("DefaultVersionId", "v1")}


# --- attachments and inline policies ------------------------------------------------


class RolePolicyAttachment(Resource, type="aws:iam:RolePolicyAttachment"):
    """Grants a role a managed policy."""

    role: str
    policy_arn: str


class RolePolicyAttachmentProvider(IamResource):
    """Id ``<role name>/<policy arn>`` (a role name never holds a ``/``)."""

    type_token = "aws:iam:RolePolicyAttachment"
    resource_class = RolePolicyAttachment
    replace_on = frozenset({"*"})

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        call(f"attach {inputs['policy_arn']} to {inputs['role']}", self.client.attach_role_policy,
             RoleName=inputs["role"], PolicyArn=inputs["policy_arn"])
        return Created(f"{inputs['role']}/{inputs['policy_arn']}", {})

    batch_size = 1
    """One call lists a role's attachments: a refresh makes one per role, not per attachment."""

    def describe(self, id: str) -> dict[str, Any] | None:
        return self.from_batch(id, self.describe_many([self.batch_key(id)]).get(self.batch_key(id)))

    def batch_key(self, id: str) -> str:
        return id.partition("/")[0]

    def describe_many(self, keys: list[str]) -> Mapping[str, Any]:
        found = {}
        for role in keys:
            attached = call_or_none(f"list policies of {role}", paged(
                self.client, "list_attached_role_policies", "AttachedPolicies", RoleName=role))
            if attached is not None:
                found[role] = [p["PolicyArn"] for p in attached]
        return found

    def from_batch(self, id: str, answer: Any) -> dict[str, Any] | None:
        role, _, arn = id.partition("/")
        return {"role": role, "policy_arn": arn} if arn in (answer or []) else None

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        found = self.describe(f"{inputs.get('role')}/{inputs.get('policy_arn')}")
        return [found] if found else []

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        return ReadResult(f"{raw['role']}/{raw['policy_arn']}", dict(raw), {})

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        role, _, arn = id.partition("/")
        call_or_none(f"detach {arn} from {role}", self.client.detach_role_policy,
                     RoleName=role, PolicyArn=arn)


class RolePolicy(Resource, type="aws:iam:RolePolicy"):
    """A policy document embedded in one role."""

    role: str
    name: str
    policy: dict[str, Any]


class RolePolicyProvider(IamResource):
    """Id ``<role name>:<policy name>`` (neither may hold a ``:``)."""

    type_token = "aws:iam:RolePolicy"
    resource_class = RolePolicy
    replace_on = frozenset({"role", "name"})
    unique_keys = ("role", "name")
    documents = ("policy",)

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        self._put(inputs)
        return Created(f"{inputs['role']}:{inputs['name']}", {})

    def _put(self, inputs: Mapping[str, Any]) -> None:
        """PutRolePolicy overwrites: running it again is harmless."""
        call(f"put policy {inputs['name']} on {inputs['role']}", self.client.put_role_policy,
             RoleName=inputs["role"], PolicyName=inputs["name"],
             PolicyDocument=policy_json(inputs["policy"]))

    def describe(self, id: str) -> dict[str, Any] | None:
        role, _, name = id.partition(":")
        answer = call_or_none(f"read policy {name} of {role}", self.client.get_role_policy,
                              RoleName=role, PolicyName=name)
        if answer is None:
            return None
        return {"role": role, "name": name, "policy": parse_policy(answer["PolicyDocument"])}

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        found = self.describe(f"{inputs.get('role')}:{inputs.get('name')}")
        return [found] if found else []

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        return ReadResult(f"{raw['role']}:{raw['name']}", dict(raw), {})

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        self._put(new_inputs)
        return {}

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        role, _, name = id.partition(":")
        call_or_none(f"delete policy {name} of {role}", self.client.delete_role_policy,
                     RoleName=role, PolicyName=name)


class OpenIdConnectProvider(Resource, type="aws:iam:OpenIdConnectProvider"):
    """Lets an identity provider (an EKS cluster's OIDC issuer) be trusted by roles.
    ``url`` is the issuer (``https://`` optional); the ARN is what trust policies name."""

    url: str
    client_ids: list[str] = ["sts.amazonaws.com"]
    thumbprints: list[str] = []
    tags: dict[str, str] = {}
    arn: Output[str]


class OpenIdConnectProviderProvider(IamResource):
    """Id: the provider's ARN. Client ids and thumbprints change in place."""

    type_token = "aws:iam:OpenIdConnectProvider"
    resource_class = OpenIdConnectProvider
    replace_on = frozenset({"url"})

    def normalise(self, values: dict[str, Any]) -> dict[str, Any]:
        url = values.get("url")
        if isinstance(url, str):
            values["url"] = url if url.startswith("https://") else f"https://{url}"
        for key in ("client_ids", "thumbprints"):
            values[key] = when_known(values.get(key), lambda items: sorted(set(items or [])))
        return values

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        answer = call(f"create OIDC provider {inputs['url']}", self.client.create_open_id_connect_provider,
                      Url=inputs["url"], ClientIDList=list(inputs["client_ids"]),
                      ThumbprintList=list(inputs["thumbprints"]), Tags=tag_list(inputs["tags"], ctx))
        arn = answer["OpenIDConnectProviderArn"]
        return Created(arn, {"arn": arn})

    def describe(self, id: str) -> dict[str, Any] | None:
        answer = call_or_none(f"read OIDC provider {id}", self.client.get_open_id_connect_provider,
                              OpenIDConnectProviderArn=id)
        return None if answer is None else {**answer, "Arn": id}

    def find(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> list[Any]:
        listed = call("list OIDC providers", self.client.list_open_id_connect_providers)
        found = [self.describe(p["Arn"]) for p in listed.get("OpenIDConnectProviderList", [])]
        return [raw for raw in found if raw is not None and is_ours(all_tags(raw.get("Tags")), ctx)]

    def result(self, raw: Any, inputs: Mapping[str, Any]) -> ReadResult:
        url = str(raw.get("Url", ""))
        live = self.canonical({
            "url": url if url.startswith("https://") else f"https://{url}",
            "client_ids": list(raw.get("ClientIDList", [])),
            "thumbprints": list(raw.get("ThumbprintList", [])),
            "tags": tag_dict(raw.get("Tags")),
        })
        return ReadResult(raw["Arn"], live, {"arn": raw["Arn"]})

    def update(self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
               old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        old, new = self.canonical(old_inputs), self.canonical(new_inputs)
        for client_id in set(new["client_ids"]) - set(old["client_ids"]):
            call("add OIDC client id", self.client.add_client_id_to_open_id_connect_provider,
                 OpenIDConnectProviderArn=id, ClientID=client_id)
        for client_id in set(old["client_ids"]) - set(new["client_ids"]):
            call("remove OIDC client id", self.client.remove_client_id_from_open_id_connect_provider,
                 OpenIDConnectProviderArn=id, ClientID=client_id)
        if new["thumbprints"] != old["thumbprints"]:
            call("update OIDC thumbprints", self.client.update_open_id_connect_provider_thumbprint,
                 OpenIDConnectProviderArn=id, ThumbprintList=new["thumbprints"])
        self.sync_tags("open_id_connect_provider", {"OpenIDConnectProviderArn": id},
                       old["tags"], new["tags"])
        return {"arn": id}

    def delete(self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
               outputs: Mapping[str, Any]) -> None:
        call_or_none(f"delete OIDC provider {id}", self.client.delete_open_id_connect_provider,
                     OpenIDConnectProviderArn=id)


RESOURCE_PROVIDERS: list[type[AwsResource]] = [
    OpenIdConnectProviderProvider,
    RoleProvider, PolicyProvider, RolePolicyAttachmentProvider, RolePolicyProvider,
]
