"""Provider instances (``ResourceOptions(provider=...)``) through the real engine: the
instance's outputs reach every call of the resources using it, a changed credential
is an update of the instance only, and deletes and recovery see the instance too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import stackwright as sw
from stackwright.providers.protocol import Created, OperationContext, ResourceProvider
from unit.fakes import FakeProviders, Thing, ThingProvider
from unit.test_engine import Harness


class Conn(sw.Resource, type="fake:Conn"):
    token: str


class Widget(sw.Resource, type="fake:Widget"):
    label: str = ""
    provider: str | None = None


class ConnProvider(ResourceProvider):
    type_token = "fake:Conn"

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        return Created(ctx.urn)

    def update(self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
               old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return {}


class WidgetProvider(ThingProvider):
    """Remembers the credential each call was made with."""

    type_token = "fake:Widget"
    provider_input = "provider"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, Any]] = []

    def create(self, ctx: OperationContext, inputs: Mapping[str, Any]) -> Created:
        self.seen.append(("create", ctx.name, ctx.provider_config.get("token")))
        return super().create(ctx, inputs)

    def update(self, ctx: OperationContext, id: str, old_inputs: Mapping[str, Any],
               old_outputs: Mapping[str, Any], new_inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        self.seen.append(("update", ctx.name, ctx.provider_config.get("token")))
        return super().update(ctx, id, old_inputs, old_outputs, new_inputs)

    def delete(self, ctx: OperationContext, id: str, inputs: Mapping[str, Any],
               outputs: Mapping[str, Any]) -> None:
        self.seen.append(("delete", ctx.name, ctx.provider_config.get("token")))
        super().delete(ctx, id, inputs, outputs)


class Providers(FakeProviders):
    def __init__(self) -> None:
        super().__init__()
        self.conn, self.widget = ConnProvider(), WidgetProvider()

    def resource(self, type_token: str) -> ResourceProvider:
        return {"fake:Conn": self.conn, "fake:Widget": self.widget}.get(type_token) or super().resource(type_token)


def program(token: str, widgets: int = 2) -> Any:
    def declare() -> None:
        conn = Conn("conn", token=sw.secret(token))
        for i in range(widgets):
            w = Widget(f"w{i}", label="x", opts=sw.ResourceOptions(provider=conn))
            w.inputs["provider"] = conn.urn
    return declare


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    from cryptography.fernet import Fernet

    from stackwright.operations.keyring import FernetKey

    harness = Harness(tmp_path)
    harness.providers = Providers()  # type: ignore[assignment]
    key = Fernet.generate_key()
    harness.store.use_cipher(FernetKey("test", lambda sealing: key, "use the test key"))
    return harness


def test_calls_get_the_instance_outputs_and_a_new_credential_updates_only_the_instance(h: Harness) -> None:
    widgets: WidgetProvider = h.providers.widget  # type: ignore[attr-defined]
    assert h.up(program("t1")).ok
    assert sorted(widgets.seen) == [("create", "w0", "t1"), ("create", "w1", "t1")]
    recorded = h.store.snapshot("dev").resources
    assert recorded["dev::test::fake:Widget::w0"].inputs["provider"] == "dev::test::fake:Conn::conn"
    assert "dev::test::fake:Conn::conn" in recorded["dev::test::fake:Widget::w0"].deps

    widgets.seen.clear()
    result = h.up(program("t2"))
    assert result.ok and result.done == {"update": 1}, "only the instance changes"
    assert widgets.seen == []

    result = h.up(program("t2", widgets=1))
    assert result.ok and widgets.seen == [("delete", "w1", "t2")], "a delete uses the current credential"


class ReadingWidgets(WidgetProvider):
    def read(self, ctx: OperationContext, id: str | None, inputs: Mapping[str, Any],
             outputs: Mapping[str, Any]) -> Any:
        self.seen.append(("read", ctx.name, ctx.provider_config.get("token")))
        return super().read(ctx, id, inputs, outputs)


def test_a_lookup_reads_with_its_provider_instance(h: Harness) -> None:
    widgets = ReadingWidgets()
    h.providers.widget = widgets  # type: ignore[attr-defined]
    assert h.up(program("t1", widgets=1)).ok
    widget_id = h.store.snapshot("dev").resources["dev::test::fake:Widget::w0"].id

    def declare() -> None:
        conn = Conn("conn", token=sw.secret("t1"))
        Widget("w0", label="x", opts=sw.ResourceOptions(provider=conn)).inputs["provider"] = conn.urn
        Widget.get("found", widget_id, opts=sw.ResourceOptions(provider=conn))

    widgets.seen.clear()
    assert h.up(declare).ok
    assert widgets.seen == [("read", "found", "t1")]
    recorded = h.store.snapshot("dev").resources["dev::test::fake:Widget::found"]
    assert recorded.inputs["provider"] == "dev::test::fake:Conn::conn", "a refresh reads it through the instance too"

    widgets.seen.clear()
    assert h.up(declare).ok
    assert widgets.seen == [], "the same object through the same instance is not read again"

    def through_another() -> None:
        conn = Conn("conn", token=sw.secret("t1"))
        Widget("w0", label="x", opts=sw.ResourceOptions(provider=conn)).inputs["provider"] = conn.urn
        Widget.get("found", widget_id, opts=sw.ResourceOptions(provider=Conn("conn2", token=sw.secret("t2"))))

    assert h.up(through_another).ok
    assert widgets.seen == [("read", "found", "t2")], "another instance's object of that id is read anew"

    def through_the_default() -> None:
        conn = Conn("conn", token=sw.secret("t1"))
        Widget("w0", label="x", opts=sw.ResourceOptions(provider=conn)).inputs["provider"] = conn.urn
        Conn("conn2", token=sw.secret("t2"))
        Widget.get("found", widget_id)

    widgets.seen.clear()
    assert h.up(through_the_default).ok
    assert widgets.seen == [("read", "found", None)], "without its instance, it is read with the default one"


def test_a_lookup_under_a_component_reads_through_the_components_instance(h: Harness) -> None:
    widgets = ReadingWidgets()
    h.providers.widget = widgets  # type: ignore[attr-defined]
    assert h.up(program("t1", widgets=1)).ok
    widget_id = h.store.snapshot("dev").resources["dev::test::fake:Widget::w0"].id

    class Site(sw.Component, type="test:Site"):
        def __init__(self, name: str, conn: Conn) -> None:
            super().__init__(name, opts=sw.ResourceOptions(provider=conn))
            Widget.get("found", widget_id, opts=sw.ResourceOptions(parent=self))

    def declare() -> None:
        conn = Conn("conn", token=sw.secret("t1"))
        Widget("w0", label="x", opts=sw.ResourceOptions(provider=conn)).inputs["provider"] = conn.urn
        Site("site", conn)

    widgets.seen.clear()
    assert h.up(declare).ok
    assert widgets.seen == [("read", "found", "t1")]


def test_a_lookup_of_a_type_without_instances_records_only_what_it_read(h: Harness) -> None:
    assert h.up(program("t1", widgets=0)).ok

    def declare() -> None:
        conn = Conn("conn", token=sw.secret("t1"))
        made = Thing("made", label="x")
        Thing.get("found", made.id, opts=sw.ResourceOptions(provider=conn))

    assert h.up(declare).ok
    found = next(r for urn, r in h.store.snapshot("dev").resources.items() if urn.endswith("::found"))
    assert "" not in found.inputs and found.inputs["label"] == "x"
