"""aws:cloudwatch:Dashboard and aws:cloudwatch:MetricAlarm against the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws.conftest import ctx, tag_map
from stackwright.errors import ProviderError
from stackwright.providers.aws import cloudwatch
from stackwright.providers.aws.base import URN_TAG, AwsResource

pytestmark = pytest.mark.aws

DASHBOARD = "aws:cloudwatch:Dashboard"
ALARM = "aws:cloudwatch:MetricAlarm"
BODY = {"widgets": [{"type": "text", "x": 0, "y": 0, "width": 6, "height": 3,
                     "properties": {"markdown": "# hello"}}]}


@pytest.fixture
def dashboards(handlers: Any) -> AwsResource:
    return handlers(DASHBOARD)


@pytest.fixture
def alarms(handlers: Any) -> AwsResource:
    return handlers(ALARM)


@pytest.fixture
def client(boto: Any) -> Any:
    return boto("cloudwatch")


def test_dashboard_lifecycle(dashboards: AwsResource, client: Any) -> None:
    c = ctx(DASHBOARD, "main")
    inputs = dashboards.check({"name": "sw-main", "body": BODY})
    assert set(inputs) == set(cloudwatch.Dashboard.input_specs())
    created = dashboards.create(c, inputs)
    assert created.id == "sw-main" and created.outputs["arn"].endswith("dashboard/sw-main")

    read = dashboards.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(cloudwatch.Dashboard.input_specs())
    assert dashboards.diff(inputs, created.outputs, read.inputs).changed == ()

    body = {"widgets": BODY["widgets"] * 2}
    new = dashboards.check(dict(inputs, body=body))
    assert dashboards.diff(inputs, created.outputs, new).replaces == ()
    dashboards.update(c, created.id, inputs, created.outputs, new)
    assert json.loads(client.get_dashboard(DashboardName="sw-main")["DashboardBody"]) == body
    assert dashboards.diff(new, created.outputs, dict(new, name="sw-other")).replaces == ("name",)

    # read(None): dashboards have no tags; an interrupted create is found by name
    found = dashboards.read(c, None, new, {})
    assert found is not None and found.id == "sw-main"

    dashboards.delete(c, created.id, new, created.outputs)
    assert "sw-main" not in [d["DashboardName"] for d in client.list_dashboards()["DashboardEntries"]]
    assert dashboards.read(c, created.id, new, created.outputs) is None
    assert dashboards.read(c, None, new, {}) is None
    dashboards.delete(c, created.id, new, created.outputs)  # idempotent


def test_a_dashboard_create_refuses_a_namesake_but_a_retry_keeps_its_own(dashboards: AwsResource,
                                                                         client: Any) -> None:
    """Nothing shows whose an untagged dashboard is: a create that finds one refuses it
    (instead of overwriting it, and deleting it on destroy); the engine's retry of the
    same create, whose first answer was lost, finds its own and goes on."""
    inputs = dashboards.check({"name": "sw-namesake", "body": BODY})
    client.put_dashboard(DashboardName="sw-namesake", DashboardBody=json.dumps({"widgets": []}))
    with pytest.raises(ProviderError, match="already exists") as info:
        dashboards.create(ctx(DASHBOARD, "main", token="first"), inputs)
    assert info.value.hint and "stackwright import" in info.value.hint
    assert json.loads(client.get_dashboard(DashboardName="sw-namesake")["DashboardBody"]) == {"widgets": []}
    client.delete_dashboards(DashboardNames=["sw-namesake"])

    c = ctx(DASHBOARD, "main", token="second")
    created = dashboards.create(c, inputs)
    assert dashboards.create(c, inputs).id == created.id  # the retry
    dashboards.delete(c, created.id, inputs, created.outputs)


def alarm_inputs(alarms: AwsResource, name: str, **extra: Any) -> dict[str, Any]:
    return alarms.check({
        "name": name, "namespace": "AWS/SQS", "metric_name": "ApproximateAgeOfOldestMessage",
        "threshold": 300, "statistic": "Maximum", "period": 300, "evaluation_periods": 2,
        "dimensions": {"QueueName": "jobs"},
        "alarm_actions": ["arn:aws:sns:us-east-1:123456789012:b", "arn:aws:sns:us-east-1:123456789012:a"],
        "treat_missing_data": "notBreaching", "description": "jobs are stuck", "tags": {"team": "ops"},
        **extra,
    })


def alarm_tags(client: Any, arn: str) -> dict[str, str]:
    return tag_map(client.list_tags_for_resource(ResourceARN=arn)["Tags"])


def test_alarm_lifecycle(alarms: AwsResource, client: Any) -> None:
    c = ctx(ALARM, "stuck")
    inputs = alarm_inputs(alarms, "sw-stuck")
    assert set(inputs) == set(cloudwatch.MetricAlarm.input_specs())
    created = alarms.create(c, inputs)
    assert created.id == "sw-stuck" and created.outputs["arn"].endswith("alarm:sw-stuck")
    assert alarm_tags(client, created.outputs["arn"]) == {"team": "ops", URN_TAG: c.urn}

    read = alarms.read(c, created.id, inputs, created.outputs)
    assert read is not None
    assert set(read.inputs) == set(cloudwatch.MetricAlarm.input_specs())
    assert alarms.diff(inputs, created.outputs, read.inputs).changed == ()

    new = alarms.check(dict(inputs, threshold=600.5, statistic="p99", evaluation_periods=3,
                            dimensions={}, alarm_actions=[], ok_actions=["arn:aws:sns:us-east-1:1:ok"],
                            treat_missing_data="breaching", description="", tags={"team": "sre"}))
    assert alarms.diff(inputs, created.outputs, new).replaces == ()
    alarms.update(c, created.id, inputs, created.outputs, new)
    live = client.describe_alarms(AlarmNames=["sw-stuck"])["MetricAlarms"][0]
    assert live["Threshold"] == 600.5 and live["ExtendedStatistic"] == "p99"
    assert live["EvaluationPeriods"] == 3 and live["OKActions"] == ["arn:aws:sns:us-east-1:1:ok"]
    assert live["TreatMissingData"] == "breaching"
    assert alarm_tags(client, created.outputs["arn"]) == {"team": "sre", URN_TAG: c.urn}
    read = alarms.read(c, created.id, new, created.outputs)
    assert read is not None and alarms.diff(new, created.outputs, read.inputs).changed == ()

    assert alarms.diff(new, created.outputs, dict(new, name="sw-other")).replaces == ("name",)

    alarms.delete(c, created.id, new, created.outputs)
    assert client.describe_alarms(AlarmNames=["sw-stuck"])["MetricAlarms"] == []
    assert alarms.read(c, created.id, new, created.outputs) is None
    alarms.delete(c, created.id, new, created.outputs)  # idempotent


def test_alarm_read_without_id_finds_an_interrupted_create(alarms: AwsResource, client: Any) -> None:
    c = ctx(ALARM, "pending")
    inputs = alarm_inputs(alarms, "sw-pending")
    assert alarms.read(c, None, inputs, {}) is None
    client.put_metric_alarm(
        AlarmName="sw-pending", Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
        Threshold=300.0, Statistic="Maximum", Period=300, EvaluationPeriods=2,
        ComparisonOperator="GreaterThanThreshold", Dimensions=[{"Name": "QueueName", "Value": "jobs"}],
        AlarmActions=inputs["alarm_actions"], TreatMissingData="notBreaching",
        AlarmDescription="jobs are stuck",
        Tags=[{"Key": "team", "Value": "ops"}, {"Key": URN_TAG, "Value": c.urn}])
    found = alarms.read(c, None, inputs, {})
    assert found is not None and found.id == "sw-pending"
    assert alarms.diff(inputs, {}, found.inputs).changed == ()
    assert alarms.read(ctx(ALARM, "other"), None, inputs, {}) is None
    assert alarms.create(c, inputs).id == "sw-pending"  # a retried create is an upsert of its own alarm
    with pytest.raises(ProviderError, match="not managed"):
        alarms.create(ctx(ALARM, "other"), inputs)
    alarms.delete(c, "sw-pending", inputs, {})
