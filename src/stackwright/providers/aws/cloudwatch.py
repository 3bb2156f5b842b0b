"""CloudWatch dashboards and metric alarms.

PutDashboard and PutMetricAlarm are upserts keyed by name, so create and update are
the same call; alarm tags are only taken by PutMetricAlarm on creation, so updates
change them with TagResource/UntagResource.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from stackwright.errors import InputError, ProviderError
from stackwright.model.output import Output
from stackwright.model.resource import Resource
from stackwright.providers.aws.base import (
    AwsClients,
    AwsResource,
    call,
    call_or_none,
    claim,
    is_ours,
    tag_dict,
    tag_list,
)
from stackwright.providers.aws.common import ArnTags, reject_urn_tag, with_defaults
from stackwright.providers.protocol import Created, OperationContext, ReadResult

__all__ = ["Dashboard", "DashboardProvider", "MetricAlarm", "MetricAlarmProvider", "RESOURCE_PROVIDERS"]

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
TAGS = ArnTags(arn="ResourceARN")


class Dashboard(Resource, type="aws:cloudwatch:Dashboard"):
    """A dashboard; ``body`` is the dashboard JSON as a dict."""

    name: str
    body: dict[str, Any]
    arn: Output[str]


class MetricAlarm(Resource, type="aws:cloudwatch:MetricAlarm"):
    """An alarm on one metric. ``statistic`` may also be a percentile such as ``p99``."""

    name: str
    namespace: str
    metric_name: str
    threshold: float
    statistic: str = "Average"
    period: int = 60
    evaluation_periods: int = 1
    comparison_operator: str = "GreaterThanThreshold"
    dimensions: dict[str, str] = {}
    alarm_actions: list[str] = []
    ok_actions: list[str] = []
    treat_missing_data: str = "missing"
    description: str = ""
    tags: dict[str, str] = {}
    arn: Output[str]


# --- Dashboard ----------------------------------------------------------------------


class DashboardProvider(AwsResource):
    """``aws:cloudwatch:Dashboard``; the id is the dashboard name. Dashboards have no tags,
    so an interrupted create is found by name; and since nothing tells whose a dashboard
    is, a create refuses one that exists already, unless it is a retry of that very
    create (whose first answer was lost)."""

    service = "cloudwatch"
    type_token = "aws:cloudwatch:Dashboard"
    resource_class = Dashboard
    replace_on = frozenset({"name"})

    def __init__(self, clients: AwsClients) -> None:
        super().__init__(clients)
        self._attempted: set[str] = set()
        self._attempted_lock = threading.Lock()

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return with_defaults(Dashboard, inputs)

    def _put(self, values: Mapping[str, Any]) -> None:
        got = call(f"put dashboard {values['name']}", self.client.put_dashboard,
                   DashboardName=values["name"], DashboardBody=json.dumps(values["body"]))
        problems = [m.get("Message", "") for m in got.get("DashboardValidationMessages") or []]
        if problems:
            raise ProviderError(f"dashboard {values['name']!r} body: {'; '.join(problems)}")

    def _get(self, name: str) -> dict[str, Any] | None:
        got = call_or_none(f"get dashboard {name}", self.client.get_dashboard, DashboardName=name)
        return dict(got) if got else None

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        if self._first_attempt(ctx) and self._get(values["name"]) is not None:
            raise ProviderError(
                f"dashboard {values['name']!r} already exists; dashboards carry no tags, so nothing shows "
                "that this stack's state made it",
                hint=f"adopt it with `stackwright import {self.type_token} <name> {values['name']}`, "
                     "or choose another name")
        self._put(values)
        got = self._get(values["name"]) or {}
        return Created(values["name"], {"arn": got.get("DashboardArn")})

    def _first_attempt(self, ctx: OperationContext) -> bool:
        """The engine retries a whole create after a throttle or a lost answer, with the
        same token: only its first attempt can tell a namesake from its own dashboard."""
        with self._attempted_lock:
            first = ctx.token not in self._attempted
            self._attempted.add(ctx.token)
        return first

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        name = id or inputs.get("name")
        got = self._get(name) if name else None
        if name is None or got is None:
            return None
        live = {"name": name, "body": json.loads(got.get("DashboardBody") or "{}")}
        return ReadResult(name, live, {"arn": got.get("DashboardArn")})

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        self._put(self.check(new_inputs))
        return {}

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        call_or_none(f"delete dashboard {id}", self.client.delete_dashboards, DashboardNames=[id])


# --- MetricAlarm --------------------------------------------------------------------


class MetricAlarmProvider(AwsResource):
    """``aws:cloudwatch:MetricAlarm``; the id is the alarm name."""

    service = "cloudwatch"
    type_token = "aws:cloudwatch:MetricAlarm"
    resource_class = MetricAlarm
    replace_on = frozenset({"name"})

    def check(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = with_defaults(MetricAlarm, inputs)
        stat = values["statistic"]
        if stat not in STATISTICS and not (isinstance(stat, str) and stat[:1] in ("p", "t")):
            raise InputError(f"statistic must be one of {STATISTICS} or a percentile like 'p99'",
                             prop="statistic")
        if values["treat_missing_data"] not in MISSING_DATA:
            raise InputError(f"treat_missing_data must be one of {MISSING_DATA}", prop="treat_missing_data")
        values["threshold"] = float(values["threshold"])
        values["alarm_actions"] = sorted(values["alarm_actions"])
        values["ok_actions"] = sorted(values["ok_actions"])
        reject_urn_tag(values["tags"])
        return values

    def _put(self, values: Mapping[str, Any], tags: list[dict[str, str]] | None) -> None:
        stat = values["statistic"]
        kwargs: dict[str, Any] = {
            "AlarmName": values["name"], "AlarmDescription": values["description"],
            "Namespace": values["namespace"], "MetricName": values["metric_name"],
            "Period": values["period"], "EvaluationPeriods": values["evaluation_periods"],
            "Threshold": values["threshold"], "ComparisonOperator": values["comparison_operator"],
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(values["dimensions"].items())],
            "AlarmActions": values["alarm_actions"], "OKActions": values["ok_actions"],
            "TreatMissingData": values["treat_missing_data"],
            ("Statistic" if stat in STATISTICS else "ExtendedStatistic"): stat,
        }
        if tags is not None:
            kwargs["Tags"] = tags
        call(f"put alarm {values['name']}", self.client.put_metric_alarm, **kwargs)

    def _describe(self, name: str) -> dict[str, Any] | None:
        got = call_or_none(f"describe alarm {name}", self.client.describe_alarms,
                           AlarmNames=[name], AlarmTypes=["MetricAlarm"])
        alarms = (got or {}).get("MetricAlarms") or []
        return dict(alarms[0]) if alarms else None

    def _all_tags(self, arn: str) -> dict[str, str]:
        return TAGS.read(self.client, arn)

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        values = self.check(inputs)
        existing = self._describe(values["name"])
        if existing is not None:
            claim("alarm", values["name"], self._all_tags(existing["AlarmArn"]), ctx)
        self._put(values, tag_list(values["tags"], ctx))
        alarm = self._describe(values["name"]) or {}
        return Created(values["name"], {"arn": alarm.get("AlarmArn")})

    def read(
        self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> ReadResult | None:
        name = id or inputs.get("name")
        alarm = self._describe(name) if name else None
        if alarm is None:
            return None
        tags = self._all_tags(alarm["AlarmArn"])
        if id is None and not is_ours(tags, ctx):
            return None
        return ReadResult(alarm["AlarmName"], self._live_inputs(alarm, tags), {"arn": alarm["AlarmArn"]})

    @staticmethod
    def _live_inputs(alarm: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
        return {
            "name": alarm["AlarmName"],
            "namespace": alarm.get("Namespace"),
            "metric_name": alarm.get("MetricName"),
            "threshold": float(alarm.get("Threshold", 0.0)),
            "statistic": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
            "period": alarm.get("Period"),
            "evaluation_periods": alarm.get("EvaluationPeriods"),
            "comparison_operator": alarm.get("ComparisonOperator"),
            "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []},
            "alarm_actions": sorted(alarm.get("AlarmActions") or []),
            "ok_actions": sorted(alarm.get("OKActions") or []),
            "treat_missing_data": alarm.get("TreatMissingData") or "missing",
            "description": alarm.get("AlarmDescription") or "",
            "tags": tag_dict(tag_list(tags)),
        }

    def update(
        self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
        old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any],
    ) -> Mapping[str, Any]:
        old, new = with_defaults(MetricAlarm, old_inputs), self.check(new_inputs)
        self._put(new, None)
        alarm = self._describe(id)
        if alarm is None:
            raise ProviderError(f"alarm {id!r} no longer exists")
        if old["tags"] != new["tags"]:
            stale = [k for k in old["tags"] if k not in new["tags"]]
            TAGS.write(self.client, alarm["AlarmArn"], stale, new["tags"], ctx)
        return {"arn": alarm["AlarmArn"]}

    def delete(
        self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        call_or_none(f"delete alarm {id}", self.client.delete_alarms, AlarmNames=[id])


RESOURCE_PROVIDERS: list[type[AwsResource]] = [DashboardProvider, MetricAlarmProvider]
