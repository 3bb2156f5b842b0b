"""Per-module mutation scores from mutmut's results; exits 1 when a module is below the bar.

mutmut 3 writes one ``mutants/<source path>.meta`` JSON file per mutated module, holding the
exit code of the test run for each mutant. A mutant counts as killed when the tests failed
(exit 1 or 3), timed out, or the type checker refused it. Mutants named under the heading
"## Equivalent mutants" of docs/mutation.md are left out of the score: they change no
behaviour, so no test can kill them. A mutant that was never run makes the check fail,
because a partial run must not pass as a full one.

tools/mutation_run.py runs each module in its own directory and passes each one's
``mutants`` directory with ``--mutants`` (repeatable), so that all modules appear in one table.

Usage: python tools/mutation_score.py [--min 90] [--mutants mutants]... [--equivalents docs/mutation.md]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

KILLED_EXIT_CODES = {1, 3, 36, 37, 24, -24, 152, 255}
MUTANT_NAME = re.compile(r"`([A-Za-z_][\w.]*__mutmut_\d+)`")


@dataclass(frozen=True)
class ModuleScore:
    """The counts for one mutated source file."""

    path: str
    mutants: int
    killed: int
    survived: tuple[str, ...]
    equivalent: int
    not_run: int
    stale: tuple[str, ...] = ()
    """Listed as equivalent, yet killed: the listing names another mutant now."""

    @property
    def score(self) -> float:
        counted = self.mutants - self.equivalent
        return 100.0 if counted == 0 else 100.0 * self.killed / counted


def equivalent_mutants(doc: Path) -> set[str]:
    """Mutant names listed in the doc's "Equivalent mutants" section."""
    if not doc.exists():
        return set()
    text = doc.read_text(encoding="utf-8")
    _, found, rest = text.partition("## Equivalent mutants")
    if not found:
        return set()
    section = rest.split("\n## ", 1)[0]
    return set(MUTANT_NAME.findall(section))


def module_score(meta: Path, root: Path, equivalents: set[str]) -> ModuleScore:
    """Counts for one ``.meta`` file; mutants that mutmut did not run are counted apart."""
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    listed = {name for name in codes if name in equivalents}
    stale = tuple(sorted(name for name in listed if codes[name] in KILLED_EXIT_CODES))
    equivalent = listed.difference(stale)
    not_run = sum(1 for code in codes.values() if code is None)
    killed = sum(1 for name, code in codes.items() if code in KILLED_EXIT_CODES and name not in equivalent)
    survived = tuple(
        sorted(
            name
            for name, code in codes.items()
            if code is not None and code not in KILLED_EXIT_CODES and name not in equivalent
        )
    )
    path = str(meta.relative_to(root).with_suffix(""))
    return ModuleScore(path, len(codes), killed, survived, len(equivalent), not_run, stale)


def render(scores: list[ModuleScore]) -> str:
    """A Markdown table, the form docs/mutation.md records."""
    lines = [
        "| module | mutants | killed | survived | equivalent | not run | score |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        lines.append(
            f"| {s.path} | {s.mutants} | {s.killed} | {len(s.survived)} | {s.equivalent} | {s.not_run} | {s.score:.1f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=90.0, help="lowest score a module may have, in percent")
    parser.add_argument("--mutants", type=Path, action="append", help="mutmut's results directory (repeatable)")
    parser.add_argument("--equivalents", type=Path, default=Path("docs/mutation.md"))
    args = parser.parse_args(argv)
    roots: list[Path] = args.mutants or [Path("mutants")]
    metas = [(meta, root) for root in roots for meta in sorted(root.rglob("*.py.meta"))]
    if not metas:
        print(f"no mutmut results under {', '.join(map(str, roots))}: run `make mutation` first", file=sys.stderr)
        return 1
    equivalents = equivalent_mutants(args.equivalents)
    scores = [module_score(meta, root, equivalents) for meta, root in metas]
    print(render(scores))
    failed = [s for s in scores if s.score < args.min or s.not_run or s.stale]
    for s in scores:
        for name in s.survived:
            print(f"survived: {name}  (mutmut show {name})")
        for name in s.stale:
            print(f"listed as equivalent but killed: {name}  (renumbered? mutmut show {name})")
    for s in failed:
        reason = (f"{s.not_run} mutants not run" if s.not_run else
                  f"{len(s.stale)} mutants listed as equivalent were killed" if s.stale else
                  f"score {s.score:.1f}% < {args.min:.0f}%")
        print(f"FAIL {s.path}: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
