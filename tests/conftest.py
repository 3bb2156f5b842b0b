import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

pytest_plugins = ["aws_emulator", "pg_server"]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
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
