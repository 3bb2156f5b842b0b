"""Finding providers by the prefix of a type token (``aws:s3:Bucket`` → ``aws``).

Built-in providers are imported lazily by module path, so a program that only uses
``local`` never imports boto3. Third-party providers register an entry point in the
``stackwright.providers`` group that names a ``Provider`` factory.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, cast

from stackwright.errors import ProjectError
from stackwright.providers.protocol import InputRule, Provider, ResourceProvider

BUILTIN: dict[str, str] = {
    "local": "stackwright.providers.local:provider",
    "random": "stackwright.providers.random:provider",
    "synthetic": "stackwright.providers.synthetic:provider",
    "aws": "stackwright.providers.aws:provider",
    "k8s": "stackwright.providers.k8s:provider",
}


EMULATORS: dict[str, str] = {
    "aws": "stackwright.providers.aws.localcloud",
}
"""Local emulators of a provider's cloud, by provider name: modules with ``start``,
``status`` and ``stop`` (``LocalEmulator``)."""


CREDENTIAL_PLUGINS: dict[str, str] = {
    "eks get-token": "stackwright.providers.aws.eks_auth:cluster_token",
}
"""Functions ``(cluster, region) -> bearer token`` standing in for a kubeconfig's exec
credential plugin (``aws eks get-token``), by the plugin's subcommand: so one
provider uses another cloud's credentials without importing that provider."""


def credential_plugin(command: str) -> Callable[[str | None, str | None], str]:
    """The in-process stand-in for the exec plugin ``command``; KeyError if none."""
    module_name, _, attr = CREDENTIAL_PLUGINS[command].partition(":")
    return cast(Callable[[str | None, str | None], str],
                getattr(importlib.import_module(module_name), attr))


class RunningEmulator(Protocol):
    @property
    def url(self) -> str: ...

    pid: int
    log: str


class LocalEmulator(Protocol):
    """Runs one emulator per user and machine, recorded in a per-user folder."""

    def start(self, folder: Path | None = None, port: int | None = None,
              timeout: float = 30.0) -> RunningEmulator: ...

    def status(self, folder: Path | None = None) -> RunningEmulator | None: ...

    def stop(self, folder: Path | None = None) -> bool: ...


def local_emulator(name: str = "aws") -> LocalEmulator:
    """The local emulator of provider ``name`` (the CLI's ``local-cloud``)."""
    if name not in EMULATORS:
        raise ProjectError(f"provider {name!r} has no local emulator",
                           hint=f"emulators: {', '.join(sorted(EMULATORS))}")
    return cast(LocalEmulator, importlib.import_module(EMULATORS[name]))


LOCAL_CLUSTERS: dict[str, str] = {
    "k8s": "stackwright.providers.k8s.localcluster",
}
"""Local clusters of a provider, by provider name: modules with ``default_state_dir``,
``start``, ``start_kind``, ``status`` and ``stop`` (``LocalClusterTool``)."""


class RunningCluster(Protocol):
    server: str
    kubeconfig: Path
    pids: dict[str, int]
    kind: str | None

    @property
    def stack_config(self) -> str: ...


class LocalClusterTool(Protocol):
    """Runs a local cluster whose processes and data live in one folder."""

    def default_state_dir(self, name: str) -> Path: ...

    def start(self, state_dir: Path, timeout: float = ...) -> RunningCluster: ...

    def start_kind(self, state_dir: Path) -> RunningCluster: ...

    def status(self, state_dir: Path) -> RunningCluster | None: ...

    def stop(self, state_dir: Path) -> bool: ...


def local_cluster(name: str = "k8s") -> LocalClusterTool:
    """The local cluster of provider ``name`` (the CLI's ``local-cluster``)."""
    if name not in LOCAL_CLUSTERS:
        raise ProjectError(f"provider {name!r} has no local cluster",
                           hint=f"local clusters: {', '.join(sorted(LOCAL_CLUSTERS))}")
    return cast(LocalClusterTool, importlib.import_module(LOCAL_CLUSTERS[name]))


class SimpleProvider:
    """A provider made of a fixed list of resource providers."""

    def __init__(self, name: str, version: str, resources: Iterable[ResourceProvider]) -> None:
        self.name = name
        self.version = version
        self.config: Mapping[str, Any] = {}
        self._resources = {r.type_token: r for r in resources}

    def configure(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def resource(self, type_token: str) -> ResourceProvider:
        return self._resources[type_token]

    def types(self) -> list[str]:
        return sorted(self._resources)


class ProviderRegistry:
    """Loads each provider once, configured from the stack's config section."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._config = config or {}
        self._providers: dict[str, Provider] = {}
        self._extra: dict[str, Provider] = {}

    def add(self, provider: Provider) -> None:
        """Use this provider object instead of looking one up (tests, benchmarks)."""
        self._extra[provider.name] = provider

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            provider = self._extra.get(name) or _load(name)
            section = self._config.get(name, {})
            provider.configure(section if isinstance(section, Mapping) else {})
            self._providers[name] = provider
        return self._providers[name]

    def resource(self, type_token: str) -> ResourceProvider:
        provider = self.provider(type_token.split(":", 1)[0])
        try:
            return provider.resource(type_token)
        except KeyError:
            raise ProjectError(
                f"provider {provider.name!r} has no resource type {type_token!r}",
                hint=f"known types: {', '.join(provider.types())}",
            ) from None

    def versions(self) -> dict[str, str]:
        return {name: p.version for name, p in sorted(self._providers.items())}


def builtin_policy_rules(names: Iterable[str] | None = None) -> list[tuple[str, InputRule]]:
    """The policy rules of every built-in provider (or of those ``names``), each with its
    provider's name. Loading a provider for its rules imports no cloud library."""
    found: list[tuple[str, InputRule]] = []
    for name in sorted(BUILTIN if names is None else set(BUILTIN) & set(names)):
        found.extend((name, rule) for rule in getattr(_load(name), "policy_rules", ()))
    return found


def _load(name: str) -> Provider:
    target = BUILTIN.get(name) or _entry_point(name)
    if target is None:
        raise ProjectError(
            f"no provider named {name!r}",
            hint=f"built-in providers: {', '.join(sorted(BUILTIN))}; others register "
            "an entry point in the 'stackwright.providers' group",
        )
    module_name, _, attr = target.partition(":")
    factory: Any = getattr(importlib.import_module(module_name), attr)
    return factory() if callable(factory) else factory  # type: ignore[no-any-return]


def _entry_point(name: str) -> str | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="stackwright.providers"):
        if ep.name == name:
            return str(ep.value)
    return None
