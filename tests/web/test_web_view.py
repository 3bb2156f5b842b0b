"""The web view over real HTTP (httpx against `stackwright serve` on 127.0.0.1): pages
and their JSON twins, identity from the trusted proxy header, CSRF, web approvals and
the environments that count them, secrets never shown, /metrics, and refusing to
serve other machines without authentication."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from web_server import PROXY_HEADER, Server
from shop import Shop, run
from support import cli_command, cli_env

BOB = {PROXY_HEADER: "bob@example.com"}
PAGES = ("/", "/stacks/shop/dev", "/stacks/shop/production", "/stacks/shop/dev/checkpoints/1",
         "/stacks/shop/dev/checkpoints/2", "/plans", "/audit", "/graph", "/metrics", "/api/stacks",
         "/api/stacks/shop/dev", "/api/stacks/shop/dev/checkpoints/1", "/api/plans", "/api/audit", "/api/graph")


def token(page: httpx.Response) -> str:
    found = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert found, "the page has no review form"
    return found.group(1)


def review(client: httpx.Client, shop: Shop, decision: str, headers: dict[str, str] | None = None,
           with_token: bool = True) -> httpx.Response:
    page = client.get(f"/plans/{shop.plan_hash}", headers=BOB)
    form = {"plan": shop.plan_hash, "decision": decision, "comment": "looks right"}
    if with_token:
        form["csrftoken"] = token(page)
    return client.post("/review", data=form, headers=headers if headers is not None else BOB)


def audit(shop: Shop) -> str:
    return run(shop.root, "audit")


def test_stacks_page_and_its_twin_show_status_drift_and_waiting_plans(server: Server) -> None:
    stacks = {s["stack"]: s for s in httpx.get(f"{server.url}/api/stacks").json()}
    assert stacks["dev"]["status"] == "applied" and stacks["dev"]["drift"]["drifted"] == 1
    assert stacks["dev"]["last_apply"]["who"] == "alice@example.com"
    assert stacks["production"]["status"] == "waiting" and stacks["production"]["waiting"] == 1
    page = httpx.get(f"{server.url}/").text
    assert "1 drifted" in page and "staging" in page


def test_stack_page_shows_the_tree_and_history_with_diffs(server: Server) -> None:
    detail = httpx.get(f"{server.url}/api/stacks/shop/dev").json()
    rows = {r["name"]: r for r in detail["rows"]}
    assert rows["storefront"]["component"] and rows["index"]["depth"] == 1
    assert [c["kind"] for c in detail["history"]] == ["refresh", "up"]
    drift = httpx.get(f"{server.url}/api/stacks/shop/dev/checkpoints/2").json()
    assert drift["changes"][0]["op"] == "refresh-changed" and drift["changes"][0]["diffs"]


def test_no_page_shows_a_secret(server: Server, shop: Shop) -> None:
    secrets = shop.secrets()
    for path in PAGES + (f"/plans/{shop.plan_hash}", f"/api/plans/{shop.plan_hash}"):
        response = httpx.get(f"{server.url}{path}", headers=BOB)
        assert response.status_code == 200, path
        assert not any(s in response.text for s in secrets), path
    assert "[secret]" in httpx.get(f"{server.url}/stacks/shop/dev").text


def test_unknown_things_are_404_in_html_and_json(server: Server) -> None:
    assert httpx.get(f"{server.url}/stacks/shop/nope").status_code == 404
    missing = httpx.get(f"{server.url}/api/plans/0123456789abcdef")
    assert missing.status_code == 404 and "no plan" in missing.json()["error"]


def test_numbers_that_name_nothing_are_404_and_a_bad_query_is_an_html_page(server: Server) -> None:
    huge = 10**20
    for path in (f"/stacks/shop/dev/checkpoints/{huge}", f"/api/stacks/shop/dev/checkpoints/{huge}",
                 "/stacks/shop/dev/checkpoints/0", "/stacks/shop/dev/checkpoints/one", "/stacks/shop/dev?history=0",
                 f"/stacks/shop/dev?page={huge}", "/audit?page=0", "/api/audit?page=0"):
        assert httpx.get(f"{server.url}{path}").status_code == 404, path
    assert "has no checkpoint" in httpx.get(f"{server.url}/api/stacks/shop/dev/checkpoints/{huge}").json()["error"]
    for path in ("/stacks/shop/dev?page=abc", "/audit?page=abc"):
        bad = httpx.get(f"{server.url}{path}")
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html"), path
        assert "<title>Not understood" in bad.text and "page: Input should be a valid integer" in bad.text


def test_a_state_store_that_cannot_be_reached_is_an_outage(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """503 for pages, their twins and /metrics alike, so that monitoring sees it; no
    password and no traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("STACKWRIGHT_STATE_URL", f"postgresql://deploy:hunter2@127.0.0.1:{closed}/state")
    server = Server(shop.root)
    try:
        for path in ("/", "/plans", "/audit", "/api/stacks", "/api/plans", "/metrics"):
            down = httpx.get(f"{server.url}{path}")
            assert down.status_code == 503, path
            assert "cannot connect to the PostgreSQL state store" in down.text, path
            assert "hunter2" not in down.text and "Traceback" not in down.text, path
        assert "<title>Unavailable" in httpx.get(f"{server.url}/").text
    finally:
        server.stop()


def test_a_read_only_state_store_refuses_a_review_as_read_only(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKWRIGHT_STATE_READ_ONLY", "1")
    server = Server(shop.root, "--identity-header", PROXY_HEADER)
    try:
        with httpx.Client(base_url=server.url) as client:
            refused = review(client, shop, "reject")
    finally:
        server.stop()
    assert refused.status_code == 409 and "<title>Read-only" in refused.text
    assert "the state store is open read-only" in refused.text
    assert [line for line in audit(shop).splitlines() if line.split()[3:4] == ["reject"]] == []


def test_identity_comes_from_the_header_only_through_a_trusted_proxy(server: Server, shop: Shop) -> None:
    assert httpx.get(f"{server.url}/api/whoami", headers=BOB).json()["identity"] == "bob@example.com"
    assert httpx.get(f"{server.url}/api/whoami").json()["identity"] is None
    elsewhere = Server(shop.root, "--identity-header", PROXY_HEADER, "--trusted-proxy", "10.9.8.7")
    try:
        assert httpx.get(f"{elsewhere.url}/api/whoami", headers=BOB).json()["identity"] is None
        assert "Approve as" not in httpx.get(f"{elsewhere.url}/plans/{shop.plan_hash}", headers=BOB).text
    finally:
        elsewhere.stop()


def test_a_review_needs_the_csrf_token_and_an_identity(server: Server, shop: Shop) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert review(client, shop, "approve", with_token=False).status_code == 403
        anonymous = review(client, shop, "approve", headers={})
        assert anonymous.status_code == 401 and "read-only" in anonymous.text
    assert [line for line in audit(shop).splitlines() if line.split()[3:4] == ["approve"]] == []


def test_web_approval_counts_where_the_environment_trusts_the_web(tmp_path_factory: pytest.TempPathFactory) -> None:
    from shop import make_shop

    from stackwright.workflow.dashboard import open_site, pending_plans

    shop = make_shop(tmp_path_factory.mktemp("approve") / "shop")
    server = Server(shop.root, "--identity-header", PROXY_HEADER)
    try:
        with httpx.Client(base_url=server.url) as client:
            done = review(client, shop, "approve")
            assert done.status_code == 303
            plan = client.get(f"/api/plans/{shop.plan_hash}").json()["pending"]
            assert plan["approved_by"] == ["bob@example.com"] and not plan["waiting"]
            rows = client.get("/api/audit", params={"kind": "approve"}).json()["rows"]
            assert rows[0]["who"] == "bob@example.com" and rows[0]["data"]["proof"] == "web"
        run(shop.root, "apply", "prod.plan", "--yes")
    finally:
        server.stop()
    project = shop.root / "stackwright.yaml"
    project.write_text(project.read_text().replace("    web_approvals: true\n", ""))
    (judged,) = [p for p in pending_plans(open_site(shop.root)) if p.plan_hash == shop.plan_hash] or [None]
    assert judged is None, "an applied plan no longer waits"


def test_a_web_approval_stops_counting_when_the_environment_stops_trusting_the_web(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    from shop import make_shop

    from stackwright.workflow.dashboard import open_site, pending_plans

    shop = make_shop(tmp_path_factory.mktemp("untrust") / "shop")
    server = Server(shop.root, "--identity-header", PROXY_HEADER)
    try:
        with httpx.Client(base_url=server.url) as client:
            assert review(client, shop, "approve").status_code == 303
    finally:
        server.stop()
    project = shop.root / "stackwright.yaml"
    project.write_text(project.read_text().replace("    web_approvals: true\n", ""))
    (plan,) = [p for p in pending_plans(open_site(shop.root)) if p.plan_hash == shop.plan_hash]
    assert plan.approved_by == () and plan.waiting
    assert "web_approvals" in dict(plan.uncounted)["bob@example.com"]


def test_a_running_view_judges_approvals_by_the_project_file_as_it_is_now(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """`environments:` edited while `serve` runs: the view refuses, counts and shows
    approvals as `apply` would judge them now, with no restart."""
    from shop import make_shop

    shop = make_shop(tmp_path_factory.mktemp("edited") / "shop")
    project = shop.root / "stackwright.yaml"
    trusting = project.read_text()
    server = Server(shop.root, "--identity-header", PROXY_HEADER)
    try:
        with httpx.Client(base_url=server.url) as client:
            project.write_text(trusting.replace("    web_approvals: true\n", ""))
            refused = review(client, shop, "approve")
            assert refused.status_code == 403 and "web_approvals" in refused.text
            project.write_text(trusting)
            assert review(client, shop, "approve").status_code == 303
            assert client.get(f"/api/plans/{shop.plan_hash}").json()["pending"]["approved_by"] == ["bob@example.com"]
            project.write_text(trusting.replace("    web_approvals: true\n", ""))
            plan = client.get(f"/api/plans/{shop.plan_hash}").json()["pending"]
            metrics = client.get("/metrics").text
    finally:
        server.stop()
    assert plan["approved_by"] == [] and plan["waiting"] and plan["missing"] == 1
    assert "web_approvals" in dict(plan["uncounted"])["bob@example.com"]
    assert 'stackwright_plans_waiting{environment="production",project="shop",stack="production"} 1.0' in metrics


def test_web_approval_is_refused_where_the_environment_does_not_trust_the_web(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    from shop import make_shop

    shop = make_shop(tmp_path_factory.mktemp("refuse") / "shop", web_approvals=False)
    server = Server(shop.root, "--identity-header", PROXY_HEADER)
    try:
        with httpx.Client(base_url=server.url) as client:
            refused = review(client, shop, "approve")
            assert refused.status_code == 403 and "web_approvals" in refused.text
    finally:
        server.stop()
    applied = subprocess.run([*cli_command(), "apply", "prod.plan", "--yes"], cwd=shop.root, env=cli_env(),
                             capture_output=True, text=True)
    assert applied.returncode == 1 and "needs 1 approval" in applied.stderr


def test_metrics_come_from_the_audit_log(server: Server) -> None:
    text = httpx.get(f"{server.url}/metrics").text
    assert 'stackwright_plans_waiting{environment="production",project="shop",stack="production"} 1.0' in text
    assert 'stackwright_drifted_resources{environment="dev",project="shop",stack="dev"} 1.0' in text
    assert re.search(r'stackwright_steps_total\{environment="dev",outcome="succeeded",project="shop",stack="dev"\} 4', text)
    assert 'stackwright_preview_duration_seconds_count{environment="production",project="shop",stack="production"} 1.0' in text
    assert "stackwright_apply_duration_seconds_bucket" in text and "stackwright_retries_total" in text


def test_serve_refuses_other_machines_without_authentication(shop: Shop) -> None:
    for flags in ([], ["--dev-user", "me"]):
        done = subprocess.run([*cli_command(), "serve", "--host", "0.0.0.0", "--port", "0", *flags], cwd=shop.root,
                              env=cli_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "without authentication" in done.stderr


def test_development_mode_is_labelled_on_every_page(shop: Shop) -> None:
    server = Server(shop.root, "--dev-user", "dev@example.com")
    try:
        for path in ("/", "/plans", "/audit", "/graph", f"/plans/{shop.plan_hash}"):
            assert "LOCAL DEVELOPMENT MODE" in httpx.get(f"{server.url}{path}").text, path
    finally:
        server.stop()


def test_openapi_spec_holds_against_the_running_server(server: Server, tmp_path: Path) -> None:
    """schemathesis (its command, as CI would run it) generates requests from the spec
    and checks every response against it: status codes, content types, schemas, no 500."""
    import sys

    done = subprocess.run([str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
                           "--checks", "all", "--max-examples", "20", "--generation-deterministic"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"Tested: (\d+)", done.stdout) and "Tested: 0" not in done.stdout, done.stdout[-2000:]


def test_metrics_count_the_retries_of_a_throttled_apply(tmp_path: Path) -> None:
    """Throttling retried by the engine is recorded with the apply, and /metrics shows it."""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stackwright.yaml").write_text("name: throttled\nmain: __main__.py\n")
    (tmp_path / "__main__.py").write_text(
        "from stackwright.providers import synthetic\n"
        "for n in range(10):\n    synthetic.Thing(f'thing-{n}', size=n)\n")
    (tmp_path / "stacks" / "dev.yaml").write_text("config:\n  synthetic: {throttle_rate: 0.3, seed: 7}\n")
    run(tmp_path, "stack", "init", "dev")
    run(tmp_path, "up", "--yes")
    server = Server(tmp_path)
    try:
        text = httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    labels = 'environment="dev",project="throttled",stack="dev"'
    retries = re.search(rf"stackwright_retries_total\{{{labels}\}} (\d+)", text)
    assert retries and int(retries.group(1)) > 0, text
    assert ('stackwright_steps_total{environment="dev",outcome="succeeded",project="throttled",stack="dev"} 10.0'
            in text)
