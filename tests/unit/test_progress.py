"""The live progress table a terminal user watches during `up`."""

from __future__ import annotations

import io

from rich.console import Console

from stackwright.cli.progress import LiveProgress

A = "dev::shop::local:File::a"
B = "dev::shop::local:File::b"


def test_live_table_tells_running_calls_from_steps_waiting_for_a_slot() -> None:
    out = io.StringIO()
    progress = LiveProgress(Console(file=out, width=100, force_terminal=False))
    progress.step_started(A, "create")
    progress.step_started(B, "update")
    progress.call_started(B)
    screen = Console(file=io.StringIO(), width=100)
    screen.print(progress.live.renderable)
    rows = [line.split() for line in screen.file.getvalue().splitlines()[1:]]  # type: ignore[attr-defined]
    assert [row[:4] for row in rows] == [["local:File", "b", "update", "running"],
                                         ["local:File", "a", "create", "queued"]]

    progress.step_finished(B, "update", "ok", 0.5)
    progress.apply_finished()
    assert "update           local:File b  ok (0.5s)" in out.getvalue()


def test_live_table_shows_what_a_running_step_waits_for() -> None:
    web = "dev::shop::k8s:apps/v1:Deployment::web"
    progress = LiveProgress(Console(file=io.StringIO(), width=120, force_terminal=False))
    progress.step_started(web, "create")
    progress.call_started(web)
    progress.step_log(web, "waiting for Deployment shop/web: 1 of 2 replicas updated")
    screen = Console(file=io.StringIO(), width=120)
    screen.print(progress.live.renderable)
    assert "waiting for Deployment shop/web: 1 of 2 replicas updated" in screen.file.getvalue()  # type: ignore[attr-defined]
    progress.step_finished(web, "create", "ok", 3.0)
    progress.step_started(web, "update")
    progress.call_started(web)
    screen = Console(file=io.StringIO(), width=120)
    screen.print(progress.live.renderable)
    assert "waiting for" not in screen.file.getvalue(), "a finished step's message is gone"  # type: ignore[attr-defined]
    progress.apply_finished()
