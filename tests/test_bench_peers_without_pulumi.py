"""bench/peers needs the `peers` extra; without the Pulumi SDK it says how to install
it in one line instead of a traceback (the SDK is hidden here, whether installed or not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "peers" / "peers_bench.py"
WITHOUT_PULUMI = f"""
import importlib.metadata as metadata, runpy, sys
found = metadata.version
def version(name):
    if name == "pulumi":
        raise metadata.PackageNotFoundError(name)
    return found(name)
metadata.version = version
sys.argv = [{str(SCRIPT)!r}, "1", "10"]
runpy.run_path({str(SCRIPT)!r}, run_name="__main__")
"""


def test_the_peer_benchmark_without_the_pulumi_sdk_says_how_to_install_it() -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_PULUMI], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "the Pulumi SDK is not installed: `.venv/bin/pip install -e '.[peers]'` (or `make bench`, which installs it)"]
    assert done.stdout == ""  # nothing measured, nothing compiled
