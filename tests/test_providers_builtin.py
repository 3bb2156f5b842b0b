"""The built-in providers, called directly as the engine would call them."""

from __future__ import annotations

import os
import stat
import string
from pathlib import Path
from typing import Any

import pytest

from stackwright.errors import ConfigError, InputError, ProviderError
from stackwright.providers import local, random, synthetic
from stackwright.providers.protocol import OperationContext, ReadResult, ResourceProvider
from stackwright.providers.registry import SimpleProvider


def ctx(token: str = "t1", type_token: str = "local:File", name: str = "f") -> OperationContext:
    return OperationContext(urn=f"dev::p::{type_token}::{name}", name=name, token=token)


# --- registry wiring --------------------------------------------------------------


@pytest.mark.parametrize(("module", "name", "types"), [
    (local, "local", ["local:Command", "local:File"]),
    (random, "random", ["random:Id", "random:Password"]),
    (synthetic, "synthetic", ["synthetic:Thing"]),
])
def test_provider_factory_lists_its_types(module: Any, name: str, types: list[str]) -> None:
    p = module.provider()
    assert isinstance(p, SimpleProvider)
    assert p.name == name
    assert p.types() == types
    for t in types:
        rp = p.resource(t)
        assert rp.resource_class is not None and rp.resource_class.type_token == t


def test_file_declares_inputs_and_outputs() -> None:
    specs = local.File.input_specs()
    assert list(specs) == ["path", "content", "mode"]
    assert specs["path"].required and specs["path"].type is str
    assert specs["content"].default == "" and specs["mode"].default == 0o644
    assert local.File.output_names() == {"sha256", "size"}
    assert local.Command.output_names() == {"stdout"}
    assert random.Password.output_names() == {"result"}
    assert random.Id.output_names() == {"hex", "b64"}
    assert synthetic.Thing.output_names() == {"value"}


# --- local:File -------------------------------------------------------------------


@pytest.fixture
def files() -> ResourceProvider:
    return local.FileProvider()


def test_file_create_writes_content_and_mode(files: ResourceProvider, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    inputs = files.check({"path": str(target), "content": "héllo\n", "mode": 0o600})
    created = files.create(ctx(), inputs)
    assert created.id == str(target)
    assert target.read_bytes() == "héllo\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert created.outputs["size"] == len("héllo\n".encode())
    assert len(created.outputs["sha256"]) == 64
    assert os.listdir(target.parent) == ["out.txt"]  # no temp file left behind


def test_file_digest_and_size_are_secret_when_the_content_is(files: ResourceProvider) -> None:
    """A digest of secret content confirms a guess offline: it is recorded secret, as
    its size; a secret path alone leaves them plain."""
    from stackwright.model.values import Secret

    assert files.secret_keys({"path": "a", "content": "x"}) == frozenset()
    assert files.secret_keys({"path": "a", "content": Secret("1234")}) == {"sha256", "size"}
    assert files.secret_keys({"path": Secret("a"), "content": "x"}) == frozenset()
    commands = local.CommandProvider()
    assert commands.secret_keys({"create": "echo", "environment": {"T": Secret("t")}}) == {"stdout"}
    assert random.PasswordProvider().secret_keys({"length": 20}) == {"result"}


def test_file_create_is_atomic(
    files: ResourceProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    calls: list[tuple[str, str]] = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src: Any, dst: Any) -> None:
        calls.append(("replace", str(src)))
        assert Path(src).parent == tmp_path and Path(src).read_text() == "new"
        assert target.read_text() == "old"  # nothing touched the target yet
        real_replace(src, dst)

    def fsync(fd: int) -> None:
        calls.append(("fsync", ""))
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    files.create(ctx(), {"path": str(target), "content": "new", "mode": 0o644})
    assert [c[0] for c in calls][:2] == ["fsync", "replace"]
    assert target.read_text() == "new"


def test_file_failed_write_leaves_old_content_and_no_temp(
    files: ResourceProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ProviderError, match="No space left"):
        files.create(ctx(), {"path": str(target), "content": "new", "mode": 0o644})
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_file_relative_path_resolves_against_cwd(
    files: ResourceProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    created = files.create(ctx(), {"path": "rel.txt", "content": "x", "mode": 0o644})
    assert created.id == str(tmp_path / "rel.txt")
    found = files.read(ctx(), created.id, {"path": "rel.txt", "content": "x", "mode": 0o644}, {})
    assert found is not None and found.inputs["path"] == "rel.txt"


def test_file_read_shows_drift_and_deletion(files: ResourceProvider, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    inputs = {"path": str(target), "content": "mine", "mode": 0o644}
    created = files.create(ctx(), inputs)

    same = files.read(ctx(), created.id, inputs, created.outputs)
    assert same == ReadResult(id=created.id, inputs=inputs, outputs=created.outputs)

    target.write_text("edited by hand")
    os.chmod(target, 0o640)
    drifted = files.read(ctx(), created.id, inputs, created.outputs)
    assert drifted is not None
    assert drifted.inputs == {"path": str(target), "content": "edited by hand", "mode": 0o640}
    assert drifted.outputs["size"] == len("edited by hand")
    assert drifted.outputs["sha256"] != created.outputs["sha256"]

    target.unlink()
    assert files.read(ctx(), created.id, inputs, created.outputs) is None


def test_file_read_without_id_finds_an_interrupted_create(
    files: ResourceProvider, tmp_path: Path,
) -> None:
    target = tmp_path / "out.txt"
    inputs = {"path": str(target), "content": "c", "mode": 0o644}
    assert files.read(ctx(), None, inputs, {}) is None
    target.write_text("c")  # the create ran; the crash came before state was saved
    found = files.read(ctx(), None, inputs, {})
    assert found is not None and found.id == str(target) and found.inputs["content"] == "c"


def test_file_update_rewrites_in_place_and_delete_is_idempotent(
    files: ResourceProvider, tmp_path: Path,
) -> None:
    target = tmp_path / "out.txt"
    old = {"path": str(target), "content": "a", "mode": 0o644}
    created = files.create(ctx(), old)
    new = {**old, "content": "bb", "mode": 0o600}
    assert files.diff(old, created.outputs, new).replaces == ()
    outputs = files.update(ctx(), created.id, old, created.outputs, new)
    assert outputs["size"] == 2 and target.read_text() == "bb"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    files.delete(ctx(), created.id, new, outputs)
    assert not target.exists()
    files.delete(ctx(), created.id, new, outputs)  # already gone: fine


def test_file_path_change_replaces_unless_same_file(
    files: ResourceProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    old = {"path": "a.txt", "content": "", "mode": 0o644}
    assert files.diff(old, {}, {**old, "path": "b.txt"}).replaces == ("path",)
    same = files.diff(old, {}, {**old, "path": "./a.txt"})
    assert same.changed == ("path",) and same.replaces == ()


def test_file_check_rejects_bad_inputs(files: ResourceProvider) -> None:
    with pytest.raises(InputError) as exc:
        files.check({"path": "", "content": "", "mode": 0o644})
    assert exc.value.prop == "path"
    with pytest.raises(InputError) as exc:
        files.check({"path": "x", "content": "", "mode": 0o10000})
    assert exc.value.prop == "mode"


# --- local:Command ----------------------------------------------------------------


@pytest.fixture
def commands() -> ResourceProvider:
    return local.CommandProvider()


def command_inputs(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"create": "true", "delete": None, "update": None, "read": None,
                            "environment": {}, "triggers": [], "dir": None}
    return {**base, **overrides}


def cmd_ctx(token: str = "t1") -> OperationContext:
    return ctx(token, "local:Command", "c")


def test_command_create_sees_env_and_returns_stripped_stdout(
    commands: ResourceProvider, tmp_path: Path,
) -> None:
    inputs = command_inputs(
        create='echo "$STACKWRIGHT_URN|$STACKWRIGHT_NAME|$STACKWRIGHT_TOKEN|$GREETING|$(pwd)"',
        environment={"GREETING": "hi"}, dir=str(tmp_path),
    )
    created = commands.create(cmd_ctx(), commands.check(inputs))
    assert created.id == "t1"
    assert created.outputs == {"stdout": f"dev::p::local:Command::c|c|t1|hi|{tmp_path}"}


def test_command_delete_gets_id_and_stdout(commands: ResourceProvider, tmp_path: Path) -> None:
    log = tmp_path / "deleted"
    inputs = command_inputs(create="echo made", delete=f'echo "$STACKWRIGHT_ID $STACKWRIGHT_STDOUT" > {log}')
    created = commands.create(cmd_ctx(), inputs)
    commands.delete(cmd_ctx("t2"), created.id, inputs, created.outputs)
    assert log.read_text().strip() == "t1 made"


def test_command_failure_carries_stderr_tail(commands: ResourceProvider) -> None:
    script = "for i in $(seq 1 50); do echo line$i >&2; done; exit 3"
    with pytest.raises(ProviderError) as exc:
        commands.create(cmd_ctx(), command_inputs(create=script))
    assert not exc.value.retryable
    assert "status 3" in exc.value.message and "line50" in exc.value.message
    assert "line1\n" not in exc.value.message  # only the last lines


def test_command_replace_and_update_rules(commands: ResourceProvider, tmp_path: Path) -> None:
    old = command_inputs(create="echo v1")
    for key, value in [("create", "echo v2"), ("triggers", ["x"]), ("dir", "/tmp"),
                       ("environment", {"A": "1"})]:
        assert commands.diff(old, {}, {**old, key: value}).replaces == (key,)
    for key in ("update", "delete"):
        d = commands.diff(old, {}, {**old, key: "echo x"})
        assert d.changed == (key,) and d.replaces == ()

    created = commands.create(cmd_ctx(), old)
    quiet = commands.update(cmd_ctx("t2"), created.id, old, created.outputs, {**old, "delete": "true"})
    assert quiet == {"stdout": "v1"}
    loud = {**old, "update": 'echo "updated $STACKWRIGHT_STDOUT"'}
    assert commands.update(cmd_ctx("t3"), created.id, old, created.outputs, loud) == {"stdout": "updated v1"}


def test_command_read(commands: ResourceProvider) -> None:
    inputs = command_inputs(create="echo v1")
    assert commands.read(cmd_ctx(), None, inputs, {}) is None
    kept = commands.read(cmd_ctx(), "t1", inputs, {"stdout": "v1"})
    assert kept == ReadResult(id="t1", inputs=inputs, outputs={"stdout": "v1"})
    live = commands.read(cmd_ctx(), "t1", {**inputs, "read": "echo now"}, {"stdout": "v1"})
    assert live is not None and live.outputs == {"stdout": "now"}


# --- random -----------------------------------------------------------------------


def test_password_respects_length_and_classes() -> None:
    p = random.PasswordProvider()
    assert p.secret_outputs == {"result"}
    for _ in range(20):
        inputs = p.check({"length": 4, "special": True, "upper": True, "lower": True, "numeric": True})
        pw = p.create(ctx(), inputs).outputs["result"]
        assert len(pw) == 4
        assert any(c in string.ascii_lowercase for c in pw)
        assert any(c in string.ascii_uppercase for c in pw)
        assert any(c in string.digits for c in pw)
        assert any(c in random.SPECIAL_CHARACTERS for c in pw)
    digits = p.create(ctx(), p.check({"length": 30, "special": False, "upper": False,
                                      "lower": False, "numeric": True}))
    assert len(digits.outputs["result"]) == 30 and digits.outputs["result"].isdigit()
    assert digits.id == "t1"  # never the password itself


def test_password_check_rejects_short_or_empty_alphabet() -> None:
    p = random.PasswordProvider()
    with pytest.raises(InputError) as exc:
        p.check({"length": 3})
    assert exc.value.prop == "length"
    with pytest.raises(InputError) as exc:
        p.check({"length": 8, "special": False, "upper": False, "lower": False, "numeric": False})
    assert exc.value.prop is not None


def test_id_values_and_replace_on_any_change() -> None:
    p = random.IdProvider()
    inputs = p.check({"byte_length": 4, "prefix": "app-", "keepers": {"k": "1"}})
    created = p.create(ctx(), inputs)
    hex_value, b64 = created.outputs["hex"], created.outputs["b64"]
    assert hex_value.startswith("app-") and len(hex_value) == 4 + 8
    assert b64.startswith("app-") and "=" not in b64 and "+" not in b64 and "/" not in b64
    for key, value in [("byte_length", 5), ("prefix", "x-"), ("keepers", {"k": "2"})]:
        d = p.diff(inputs, created.outputs, {**inputs, key: value})
        assert d.replaces == (key,)
    assert p.read(ctx(), None, inputs, created.outputs) is None
    assert p.read(ctx(), created.id, inputs, created.outputs) == ReadResult(
        id=created.id, inputs=inputs, outputs=created.outputs)


# --- synthetic --------------------------------------------------------------------


def thing_ctx(token: str = "t1") -> OperationContext:
    return ctx(token, "synthetic:Thing", "x")


def test_synthetic_crud_and_counts() -> None:
    p = synthetic.provider()
    p.configure({})
    things = p.resource("synthetic:Thing")
    assert isinstance(things, synthetic.ThingProvider)
    inputs = {"size": 1, "label": "a", "ref": ""}
    created = things.create(thing_ctx(), inputs)
    assert things.create(thing_ctx(), inputs) == created  # retried create: same object
    assert things.read(thing_ctx(), created.id, inputs, created.outputs) is not None
    assert things.read(thing_ctx(), None, inputs, {}) is None
    new = {**inputs, "size": 2}
    d = things.diff(inputs, created.outputs, new)
    assert d.changed == ("size",) and d.replaces == ()
    assert things.diff(inputs, created.outputs, {**inputs, "label": "b"}).replaces == ("label",)
    assert things.update(thing_ctx("t2"), created.id, inputs, created.outputs, new) != created.outputs
    things.delete(thing_ctx("t3"), created.id, new, {})
    assert things.read(thing_ctx(), created.id, new, {}) is None
    assert things.calls == {"create": 2, "read": 3, "update": 1, "delete": 1}
    assert isinstance(p, synthetic.SyntheticProvider) and p.calls is things.calls


def test_synthetic_throttle_is_retryable_and_counted() -> None:
    p = synthetic.provider()
    p.configure({"throttle_rate": 1.0, "seed": 7})
    things = p.resource("synthetic:Thing")
    assert isinstance(things, synthetic.ThingProvider)
    for _ in range(3):
        with pytest.raises(ProviderError) as exc:
            things.create(thing_ctx(), {"size": 0, "label": "", "ref": ""})
        assert exc.value.retryable and "Throttling" in exc.value.message
    assert things.calls["create"] == 3
    assert things.objects == {}


def test_synthetic_fail_rate_is_permanent_and_config_is_checked() -> None:
    p = synthetic.provider()
    p.configure({"fail_rate": 1.0})
    things = p.resource("synthetic:Thing")
    with pytest.raises(ProviderError) as exc:
        things.delete(thing_ctx(), "thing-x", {}, {})
    assert not exc.value.retryable
    with pytest.raises(ConfigError):
        p.configure({"throttle_rate": 1.5})
    with pytest.raises(ConfigError):
        p.configure({"latency": "slow"})


def test_synthetic_latency_overlaps_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Latency is slept outside the provider's lock: all eight calls can be asleep at
    once (a barrier of eight inside the sleep would break were they serialized)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    asleep = threading.Barrier(8, timeout=30)
    monkeypatch.setattr(synthetic.time, "sleep", lambda seconds: asleep.wait())
    p = synthetic.provider()
    p.configure({"latency": 0.1})
    things = p.resource("synthetic:Thing")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: things.create(thing_ctx(f"t{i}"), {"size": i}), range(8)))
    assert isinstance(things, synthetic.ThingProvider) and len(things.objects) == 8
