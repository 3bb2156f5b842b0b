"""`stackwright gitops diff --since REF` through the real command: a chart version bump
committed on top of REF shows the Deployment whose image changed, field by field, and
secret values stay masked."""

from __future__ import annotations

import shutil
from pathlib import Path

from gitops_project import GitopsProject, age_identity
from helm_servers import EXAMPLE_CHART


def bump_chart(chart: Path, version: str, app_version: str) -> None:
    text = (chart / "Chart.yaml").read_text()
    lines = [f"version: {version}" if line.startswith("version:") else
             f'appVersion: "{app_version}"' if line.startswith("appVersion:") else line for line in text.splitlines()]
    (chart / "Chart.yaml").write_text("\n".join(lines) + "\n")


def test_a_chart_version_bump_shows_the_deployment_whose_image_changed(tmp_path: Path) -> None:
    recipient, _ = age_identity(tmp_path)
    project = GitopsProject(tmp_path / "repo", recipient, chart=tmp_path / "repo" / "project" / "charts" / "app")
    shutil.copytree(EXAMPLE_CHART, project.chart)
    project.stack("dev", [{"name": "alpha", "password": "first-pw"}])
    project.commit("chart 0.3.0")
    bump_chart(project.chart, "0.4.0", "1.28.1")
    project.stack("dev", [{"name": "alpha", "password": "second-pw"}])

    out = project.ok("gitops", "diff", "--since", "HEAD")

    assert "dev: 7 object(s) change (0 added, 7 changed, 0 removed)" in out, out
    deployment = out.split("~ Deployment alpha/alpha-web-app (release alpha-web)\n", 1)[1].split("\n  ~ ", 1)[0]
    assert '~ spec.template.spec.containers[0].image: "nginx:1.27.0" -> "nginx:1.28.1"' in deployment
    assert '~ metadata.labels.helm.sh/chart: "app-0.3.0" -> "app-0.4.0"' in deployment
    assert "~ stringData.password: [secret] -> [secret]" in out
    assert "first-pw" not in out and "second-pw" not in out


def test_nothing_changed_since_head(tmp_path: Path) -> None:
    recipient, _ = age_identity(tmp_path)
    project = GitopsProject(tmp_path / "repo", recipient)
    project.stack("dev", [{"name": "alpha", "password": "pw"}])
    project.commit("first")
    assert project.ok("gitops", "diff", "--since", "HEAD").strip() == "No object changes."
    done = project.run("gitops", "diff", "--since", "no-such-branch")
    assert done.returncode == 1 and "git rev-parse" in done.stderr and "--since takes a git revision" in done.stderr
