import os
import sys
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

pytest_plugins = ["aws_emulator", "pg_server", "local_cluster"]

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember every skip: in CI a skip means a server or binary the set-up should
    have installed is missing, and that must not pass silently."""
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") == "true" and _skipped and not hasattr(session.config, "workerinput"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if os.environ.get("CI") == "true" and _skipped:
        terminalreporter.section("skips are failures in CI")
        for line in _skipped:
            terminalreporter.write_line(line)
    _crash_trial_summary(terminalreporter)


def _crash_trial_summary(terminalreporter: Any) -> None:
    """Sum what the crash trials report (test_crash_recovery.py), across xdist workers."""
    from test_crash_recovery import AFTER_LOCK

    reports = [r for r in terminalreporter.stats.get("passed", []) if getattr(r, "when", "") == "call"]
    counts = [value for r in reports for name, value in r.user_properties if name == AFTER_LOCK]
    if not counts:
        return
    total = sum(counts)
    terminalreporter.write_line(f"{AFTER_LOCK}: {total} (in {len(counts)} passing test(s))")
    needed = int(os.environ.get("CRASH_MIN_AFTER_LOCK", "0"))
    if total < needed:
        terminalreporter.write_line(f"FAILED: fewer than CRASH_MIN_AFTER_LOCK={needed}", red=True)
        terminalreporter._session.exitstatus = 1
