"""`make demo`: Stackwright's main job end to end, on a fresh machine, with no cloud account.

Runs the real `stackwright` command in a scratch folder and narrates each step:
scaffold a project, preview, apply, change config, preview the exact change, apply,
inspect history, detect drift made behind Stackwright's back, and destroy. When the
AWS platform example is present, the same story runs against the local cloud, then the
apps layer deploys a Helm chart to a local Kubernetes cluster (or previews it), and the
tenants layer adds a customer as one config line and prints the review of that change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "stackwright.cli.main"]
ENV = {**os.environ, "STACKWRIGHT_USER": os.environ.get("STACKWRIGHT_USER", "demo@example.com")}


def say(text: str) -> None:
    print(f"\n\033[1;36m==> {text}\033[0m", flush=True)


def sw(cwd: Path, *args: str, expect: int = 0) -> str:
    print(f"$ stackwright {' '.join(args)}", flush=True)
    done = subprocess.run([*CLI, *args], cwd=cwd, env=ENV, text=True, capture_output=True)
    output = done.stdout + done.stderr
    print(output.rstrip(), flush=True)
    if done.returncode != expect:
        raise SystemExit(f"demo failed: `stackwright {' '.join(args)}` exited {done.returncode}")
    return output


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"demo failed: {what}")
    print(f"   ok: {what}")


def quickstart(work: Path) -> None:
    say("Scaffold a project with `stackwright new` (local files + random ids, no cloud)")
    sw(work, "new", "quickstart")
    project = work / "quickstart"
    say("Preview: nothing exists yet, so everything is a create")
    check("4 to create" in sw(project, "preview", "--diff"), "preview plans 4 creates")
    say("Apply it")
    sw(project, "up", "--yes")
    check((project / "out/dev/index.html").exists(), "the file exists")
    outputs = sw(project, "outputs")
    check("db_password: [secret]" in outputs, "the generated password is masked")
    say("Change one config value; preview shows exactly that change")
    stack_file = project / "stacks/dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("greeting: hello", "greeting: bonjour"))
    text = sw(project, "preview", "--diff")
    check("1 to update" in text and "bonjour" in text, "exactly one update, showing the new value")
    sw(project, "up", "--yes")
    sw(project, "history")
    say("Someone edits a file behind Stackwright's back; refresh reports the drift")
    (project / "out/dev/index.html").write_text("edited by hand\n")
    check("1 drifted" in sw(project, "refresh"), "refresh reports the drift")
    say("`up --refresh` reads the live objects first and puts the declared content back")
    sw(project, "up", "--refresh", "--yes")
    check("bonjour" in (project / "out/dev/index.html").read_text(), "up put the declared content back")
    say("Destroy everything")
    sw(project, "destroy", "--yes")
    check(not (project / "out/dev/index.html").exists(), "the files are gone")


def main() -> None:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="stackwright-demo-"))
    try:
        quickstart(work)
        for part in ("platform_demo.py", "apps_demo.py", "tenants_demo.py"):
            if (HERE / part).exists():
                subprocess.run([sys.executable, str(HERE / part), str(work)], check=True, env=ENV, cwd=HERE)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n\033[1;32mDemo succeeded in {time.monotonic() - started:.0f}s.\033[0m")


if __name__ == "__main__":
    main()
