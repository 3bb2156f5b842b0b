"""Compile a source tree's bytecode before anything is timed.

Some machines set PYTHONDONTWRITEBYTECODE; there every command compiles again each
module it imports, about 0.08 s per `stackwright` command. Each benchmark calls
`compile_package()` first and prints what it did, so figures from such machines compare.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def compile_package(src: Path = SRC) -> str:
    """Write the .pyc files of every module under ``src`` and say so (one line, printed)."""
    compileall.compile_dir(str(src), quiet=1)
    setting = os.environ.get("PYTHONDONTWRITEBYTECODE")
    note = f"bytecode of {src} compiled before measuring"
    if setting:
        note += f" (PYTHONDONTWRITEBYTECODE={setting} is set here)"
    print(note, flush=True)
    return note
