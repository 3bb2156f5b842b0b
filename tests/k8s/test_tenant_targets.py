"""``--target tenant:NAME`` runs the program with the other tenants' children left
undeclared, unless the program uses them; any other form of target declares everything.
(The real `helm` renders the tenants' releases; no cluster is needed to declare.)"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from helm_servers import EXAMPLE_CHART

import stackwright as sw
from stackwright.components import Tenant
from stackwright.model import context
from stackwright.model.context import ConfigSource, ProgramContext
from stackwright.model.desired import DesiredGraph
from stackwright.operations.update import complete_for
from stackwright.program.runner import desired_graph
from stackwright.providers import k8s
from stackwright.state.records import ResourceState, Snapshot

NAMES = ("a", "b", "c")


def declare(program: Callable[[], object], targets: Sequence[str]) -> DesiredGraph:
    ctx = ProgramContext(stack="dev", project="p", config=ConfigSource({}, "stacks/dev.yaml"),
                         targets=tuple(targets))
    with context.activate(ctx):
        program()
        ctx.finish()
    return desired_graph(ctx)


def tenants(use: Callable[[dict[str, Tenant]], object] = lambda found: None) -> Callable[[], object]:
    def program() -> None:
        cluster = k8s.Provider("cluster", kubeconfig="unused")
        found = {name: Tenant({"name": name}, chart=str(EXAMPLE_CHART), opts=sw.ResourceOptions(provider=cluster))
                 for name in NAMES}
        use(found)
    return program


def tenants_declared(desired: DesiredGraph) -> set[str]:
    return {urn.rsplit("::", 1)[1].split("$", 1)[0] for urn in desired.resources if "$" in urn}


@pytest.fixture(autouse=True)
def _in_project(helm_binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKWRIGHT_HELM", helm_binary)
    monkeypatch.chdir(tmp_path)


def test_a_tenant_target_declares_that_tenant_alone() -> None:
    full = declare(tenants(), ())
    partial = declare(tenants(), ["tenant:b"])

    assert tenants_declared(full) == set(NAMES)
    assert tenants_declared(partial) == {"b"}
    assert {u for u in full.resources if "$" not in u or "::b$" in u} == set(partial.resources)
    assert set(partial.components) == set(full.components) - {u for u in full.components if "::a$" in u or "::c$" in u}


@pytest.mark.parametrize("target", ["b", "dev::p::stackwright:k8s:Tenant::b", "b$namespace", "chart:b/x"])
def test_other_forms_of_target_declare_every_tenant(target: str) -> None:
    assert tenants_declared(declare(tenants(), [target])) == set(NAMES)


def test_a_tenant_the_program_uses_is_declared() -> None:
    def use(found: dict[str, Tenant]) -> None:
        k8s.ConfigMap("uses-a", metadata={"namespace": "b"}, data={"ns": found["a"].namespace.uid})
        k8s.ConfigMap("after-c", metadata={"namespace": "b"}, opts=sw.ResourceOptions(depends_on=[found["c"]]))

    desired = declare(tenants(use), ["tenant:b"])

    assert tenants_declared(desired) == set(NAMES)
    after_c = desired.deps["dev::p::k8s:core/v1:ConfigMap::after-c"]
    assert "dev::p::k8s:core/v1:Namespace::c$namespace" in after_c
    assert any("::c$c$c/" in urn for urn in after_c)


def test_an_object_in_a_skipped_tenants_namespace_declares_that_tenant() -> None:
    def use(found: dict[str, Tenant]) -> None:
        k8s.ConfigMap("in-c", metadata={"namespace": "c"})

    desired = declare(tenants(use), ["tenant:b"])

    assert tenants_declared(desired) == {"b", "c"}
    assert "dev::p::k8s:core/v1:Namespace::c$namespace" in desired.deps["dev::p::k8s:core/v1:ConfigMap::in-c"]


class Session:
    """What ``complete_for`` uses of a stack session: running the program in full."""

    def __init__(self) -> None:
        self.full_runs = 0

    def run_program(self, targets: Sequence[str] = ()) -> DesiredGraph:
        assert not targets
        self.full_runs += 1
        return declare(tenants(), ())


def recorded(desired: DesiredGraph, extra_deps: dict[str, list[str]]) -> Snapshot:
    rows = {urn: ResourceState(urn, urn.split("::")[2], urn, {}, {}, deps=[*desired.deps.get(urn, ()),
                                                                          *extra_deps.get(urn, ())])
            for urn in desired.resources}
    return Snapshot(stack="dev", lineage="l", serial=1, resources=rows, outputs={})


def test_a_targeted_run_missing_a_recorded_dependency_is_replaced_by_a_full_one() -> None:
    full = declare(tenants(), ())
    b_namespace, a_namespace = ("dev::p::k8s:core/v1:Namespace::b$namespace",
                                "dev::p::k8s:core/v1:Namespace::a$namespace")
    session = Session()

    complete = complete_for(session, declare(tenants(), ["tenant:b"]),  # type: ignore[arg-type]
                            recorded(full, {b_namespace: [a_namespace]}), ["tenant:b"])

    assert session.full_runs == 1
    assert tenants_declared(complete) == set(NAMES)


def test_a_targeted_run_with_every_recorded_dependency_is_kept() -> None:
    partial = declare(tenants(), ["tenant:b"])
    session = Session()

    kept = complete_for(session, partial, recorded(declare(tenants(), ()), {}), ["tenant:b"])  # type: ignore[arg-type]

    assert session.full_runs == 0
    assert kept is partial
