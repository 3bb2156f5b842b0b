"""What only the S3 state store can get wrong: the emulator's conditional writes that
it relies on, racing for the lock across processes, lease renewal and stale-lock
takeover, optimistic serials between two writers, and folding the journal into the
head. The store's shared semantics run in test_state_store.py (``[s3]``).

Conditional writes on the emulator: moto 5 checks ``If-None-Match: *`` and ``If-Match``
on PutObject and ``If-Match`` on DeleteObject (``test_the_emulator_honours_...``), but
checks and then writes in a threaded server without a lock, so two racing conditional
writes could both succeed where S3 lets exactly one. ``providers/aws/emulator.py``
patches moto to make each write atomic with its condition, and these tests run against
that patched emulator (``test_racing_conditional_creates_...`` checks the property).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from stackwright.errors import LockHeldError, StateError
from stackwright.state.records import Change, LockInfo, ResourceState
from stackwright.state.s3 import S3StateStore, parse_s3_url

SRC = str(Path(__file__).resolve().parents[1] / "src")
RACERS = 3


def resource(n: int) -> ResourceState:
    return ResourceState(f"urn:r{n}", "T", f"r{n}-1", {"n": n}, {})


def client(url: str) -> Any:
    where = parse_s3_url(url)
    return boto3.client("s3", endpoint_url=where.endpoint, region_name="us-east-1")


def keys(url: str, under: str = "") -> list[str]:
    where = parse_s3_url(url)
    listed = client(url).list_objects_v2(Bucket=where.bucket, Prefix=where.prefix + under)
    return [o["Key"] for o in listed.get("Contents", ())]


@pytest.fixture
def store(s3_state_url: str) -> Iterator[S3StateStore]:
    with S3StateStore(s3_state_url) as s:
        s.create_stack("dev")
        yield s


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# --- the emulator -----------------------------------------------------------------------


def test_the_emulator_honours_conditional_writes(s3_state_url: str) -> None:
    s3, bucket = client(s3_state_url), parse_s3_url(s3_state_url).bucket
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert code(err) == "PreconditionFailed"
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfMatch=first)["ETag"]
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k", Body=b"3", IfMatch=first)
    assert code(err) == "PreconditionFailed"
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="k", IfMatch=first)
    assert code(err) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"2"
    s3.delete_object(Bucket=bucket, Key="k", IfMatch=second)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_racing_conditional_creates_have_exactly_one_winner(s3_state_url: str) -> None:
    s3, bucket = client(s3_state_url), parse_s3_url(s3_state_url).bucket
    for round_ in range(10):
        barrier = threading.Barrier(8)
        winners: list[int] = []

        def create(n: int) -> None:
            barrier.wait()
            try:
                s3.put_object(Bucket=bucket, Key=f"race-{round_}", Body=str(n).encode() * 50_000,
                              IfNoneMatch="*")
                winners.append(n)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "PreconditionFailed"

        threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1
        body = s3.get_object(Bucket=bucket, Key=f"race-{round_}")["Body"].read()
        assert body == str(winners[0]).encode() * 50_000


# --- the lock -----------------------------------------------------------------------------


RACER = """
import os, sys, time
from pathlib import Path
from stackwright.errors import LockHeldError
from stackwright.state.backends import open_state_store
from stackwright.state.records import LockInfo
url, me, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
s = open_state_store(url, Path("unused"))
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
try:
    s.acquire_lock("dev", LockInfo(me, os.getpid(), "runner-" + me, time.time(), "up"))
    print("won", flush=True)
    sys.stdin.readline()
except LockHeldError as exc:
    print("lost", exc.message, flush=True)
"""


def race(url: str, tmp_path: Path, names: list[str]) -> tuple[str, dict[str, str], list[subprocess.Popen[str]]]:
    """Start one process per name, let them take the lock at once: the winner's name,
    each loser's message, and the processes (the winner holds until its stdin closes)."""
    go = tmp_path / f"go-{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, url, name, str(go)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for name in names]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    go.touch()
    said = {}
    for name, p in zip(names, procs):
        assert p.stdout is not None
        said[name] = p.stdout.readline().strip()
    winners = [n for n, line in said.items() if line == "won"]
    assert len(winners) == 1, said
    return winners[0], {n: line for n, line in said.items() if n != winners[0]}, procs


def finish(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        p.communicate("\n", timeout=60)


def test_processes_racing_for_the_lock_exactly_one_wins(s3_state_url: str, tmp_path: Path) -> None:
    with S3StateStore(s3_state_url) as s:
        s.create_stack("dev")
        for _ in range(2):
            winner, losers, procs = race(s3_state_url, tmp_path, [f"p{n}" for n in range(RACERS)])
            try:
                for line in losers.values():
                    assert line.startswith("lost") and f"locked by {winner} " in line
                held = s.read_lock("dev")
                assert held is not None and held.owner == winner and held.host == f"runner-{winner}"
            finally:
                finish(procs)
            held = s.read_lock("dev")
            assert held is not None and held.owner == winner  # the winner's process ended holding it
            assert s.break_lock("dev") == held


def expired_lock(url: str, owner: str) -> None:
    """A lock whose holder was killed long ago: its lease ran out."""
    where = parse_s3_url(url)
    body = {"owner": owner, "pid": 1, "host": "gone", "acquired_at": time.time() - 3600,
            "operation": "up", "token": "dead", "expires_at": time.time() - 60}
    client(url).put_object(Bucket=where.bucket, Key=f"{where.prefix}stacks/dev/lock.json",
                           Body=json.dumps(body).encode())


def test_a_lock_whose_lease_ran_out_is_taken_over_by_exactly_one(s3_state_url: str, tmp_path: Path) -> None:
    with S3StateStore(s3_state_url) as s:
        s.create_stack("dev")
        expired_lock(s3_state_url, "crashed-bot")
        assert s.read_lock("dev").owner == "crashed-bot"  # type: ignore[union-attr]
        winner, losers, procs = race(s3_state_url, tmp_path, [f"p{n}" for n in range(RACERS)])
        try:
            assert all(f"locked by {winner} " in line for line in losers.values())
            held = s.read_lock("dev")
            assert held is not None and held.owner == winner
        finally:
            finish(procs)


def test_a_live_lease_is_respected_and_the_holder_renews_it(s3_state_url: str) -> None:
    url = s3_state_url + "&lease=4.5"  # renewed every 1.5 s
    where = parse_s3_url(url)
    key = f"{where.prefix}stacks/dev/lock.json"
    with S3StateStore(url) as holder, S3StateStore(url) as other:
        holder.create_stack("dev")
        info = LockInfo("holder", os.getpid(), "h", time.time(), "up")
        holder.acquire_lock("dev", info)
        first = json.loads(client(url).get_object(Bucket=where.bucket, Key=key)["Body"].read())
        deadline = time.monotonic() + 30
        while True:  # the holder's renewal, seen from outside
            now = json.loads(client(url).get_object(Bucket=where.bucket, Key=key)["Body"].read())
            if now["expires_at"] > first["expires_at"]:
                break
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
        with pytest.raises(LockHeldError, match="locked by holder"):
            other.acquire_lock("dev", LockInfo("other", 2, "h2", time.time(), "up"))
        holder.release_lock("dev", info.token)
        assert other.read_lock("dev") is None
        other.acquire_lock("dev", LockInfo("other", 2, "h2", time.time(), "up"))


def test_releasing_a_lock_taken_over_leaves_the_new_holders_lock(store: S3StateStore, s3_state_url: str) -> None:
    mine = LockInfo("me", 1, "h", time.time(), "up")
    store.acquire_lock("dev", mine)
    store.break_lock("dev")
    with S3StateStore(s3_state_url) as other:
        theirs = LockInfo("them", 2, "h", time.time(), "up")
        other.acquire_lock("dev", theirs)
        store.release_lock("dev", mine.token)
        assert other.read_lock("dev") == theirs


# --- serials and the journal --------------------------------------------------------------


def test_two_writers_never_share_a_serial_and_lose_no_write(store: S3StateStore, s3_state_url: str) -> None:
    """Optimistic serials: the writer that finds its serial taken re-reads and commits
    on top (the lock normally keeps writers apart; the store must not rely on it)."""
    with S3StateStore(s3_state_url) as other:
        a, b = store.begin("dev", "up", "a"), other.begin("dev", "up", "b")
        for n in range(0, 6, 2):
            a.record_resource(resource(n), Change(f"urn:r{n}", "T", "create"))
            b.record_resource(resource(n + 1), Change(f"urn:r{n + 1}", "T", "create"))
        snap = store.snapshot("dev")
        assert snap.serial == 6 and sorted(snap.resources) == [f"urn:r{n}" for n in range(6)]
        journal = keys(s3_state_url, f"stacks/dev/journal/{snap.lineage}/")
        assert [k.rsplit("/", 1)[1] for k in journal] == [f"{n:012d}.json" for n in range(1, 7)]


def test_finish_folds_the_journal_into_the_head(store: S3StateStore, s3_state_url: str) -> None:
    w = store.begin("dev", "up", "me")
    with w.batch():
        for n in range(3):
            w.record_resource(resource(n), Change(f"urn:r{n}", "T", "create"))
    w.record_resource(resource(3), Change("urn:r3", "T", "create"))
    assert len(keys(s3_state_url, "stacks/dev/journal/")) == 2  # one object per commit
    cp = w.finish("succeeded", {"x": 1})
    assert cp is not None and cp.serial == 3
    assert keys(s3_state_url, "stacks/dev/journal/") == []
    where = parse_s3_url(s3_state_url)
    head = json.loads(client(s3_state_url).get_object(
        Bucket=where.bucket, Key=f"{where.prefix}stacks/dev/head.json")["Body"].read())
    assert head["serial"] == 3 and len(head["resources"]) == 4 and head["history"][0][0] == 1
    with S3StateStore(s3_state_url) as fresh:
        assert fresh.snapshot("dev").serial == 3 and fresh.history("dev") == [cp]


def test_a_writer_of_a_stack_removed_and_made_again_fails(store: S3StateStore) -> None:
    stale = store.begin("dev", "up", "me")
    store.remove_stack("dev")
    store.create_stack("dev")
    with pytest.raises(StateError, match="removed and made again"):
        stale.record_resource(resource(1), None)
    fresh = store.begin("dev", "up", "me")
    fresh.record_resource(resource(2), None)
    assert list(store.snapshot("dev").resources) == ["urn:r2"]


def test_a_newer_format_is_refused_and_left_alone(store: S3StateStore, s3_state_url: str) -> None:
    where = parse_s3_url(s3_state_url)
    key = f"{where.prefix}stacks/dev/head.json"
    s3 = client(s3_state_url)
    head = json.loads(s3.get_object(Bucket=where.bucket, Key=key)["Body"].read())
    s3.put_object(Bucket=where.bucket, Key=key, Body=json.dumps({**head, "format": 99}).encode())
    with S3StateStore(s3_state_url) as s, pytest.raises(StateError, match="newer than"):
        s.snapshot("dev")
    assert json.loads(s3.get_object(Bucket=where.bucket, Key=key)["Body"].read())["format"] == 99


def test_a_missing_bucket_is_named_with_a_hint(s3_state_url: str) -> None:
    where = parse_s3_url(s3_state_url)
    url = s3_state_url.replace(where.bucket, "no-such-bucket-" + uuid.uuid4().hex[:8])
    with pytest.raises(StateError, match="does not exist") as err:
        S3StateStore(url)
    assert err.value.hint and "versioning" in err.value.hint


@pytest.mark.parametrize("url", ["s3://", "s3://b/p?colour=red", "s3://b?lease=soon"])
def test_a_malformed_url_is_refused(url: str) -> None:
    with pytest.raises(StateError):
        parse_s3_url(url)


def test_prefixes_keep_projects_apart(s3_state_url: str) -> None:
    other = s3_state_url.replace("/team/state?", "/team/other?")
    with S3StateStore(s3_state_url) as a, S3StateStore(other) as b:
        a.create_stack("dev")
        assert b.list_stacks() == [] and not b.stack_exists("dev")
        b.create_stack("dev")
        assert a.snapshot("dev").lineage != b.snapshot("dev").lineage


# --- credentials for an emulator -----------------------------------------------------------


def _no_aws_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No credentials anywhere: not in the environment, not in the AWS files."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return {k: v for k, v in os.environ.items()}


def test_an_emulator_endpoint_without_credentials_gets_the_dummy_ones(
        aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As the AWS provider does for a loopback endpoint (docs/local-cloud.md), and
    through the command docs/state-backends.md shows: `state migrate --to s3://...`."""
    from aws_emulator import s3_state_url_on
    from stackwright.state.s3 import _session

    url = s3_state_url_on(aws_endpoint)
    env = _no_aws_settings(monkeypatch, tmp_path)
    with S3StateStore(url) as s:
        s.create_stack("dev")
        assert [st.name for st in s.list_stacks()] == ["dev"]
    project = tmp_path / "proj"
    project.mkdir()
    (project / "stackwright.yaml").write_text("name: proj\nmain: __main__.py\n")
    (project / "__main__.py").write_text("import stackwright as sw\n")
    env.update(STACKWRIGHT_USER="tester", PYTHONPATH=SRC)
    cli = [sys.executable, "-m", "stackwright.cli.main"]
    subprocess.run([*cli, "stack", "init", "dev"], cwd=project, env=env, check=True, capture_output=True)
    to = url.replace("/team/state?", "/team/migrated?")
    done = subprocess.run([*cli, "state", "migrate", "--to", to], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Copied stack 'dev'" in done.stdout
    # Credentials the environment gives are used, emulator or not.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    assert _session(parse_s3_url(url)).get_credentials().access_key == "mine"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert _session(parse_s3_url(url)).get_credentials().access_key == "testing"
    # A real endpoint never gets the dummy ones.
    assert _session(parse_s3_url("s3://b/p?endpoint=https://s3.eu-west-1.amazonaws.com")).get_credentials() is None
