"""The web view in a real browser: Playwright drives Debian's Chromium (never a
downloaded one) against `stackwright serve` on 127.0.0.1.

Without /usr/bin/chromium these tests skip, and with CI=true a skip fails the run
(tests/conftest.py): the project's set-up installs it (.ci/run)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from web_server import PROXY_HEADER, Server
from shop import Shop

CHROMIUM = os.environ.get("STACKWRIGHT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BOB = {PROXY_HEADER: "bob@example.com"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def anonymous(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(base_url=server.url)
    yield context.new_page()
    context.close()


@pytest.fixture
def bob(browser: Any, server: Server) -> Iterator[Any]:
    """Bob, as the authenticating proxy in front of the server names him."""
    context = browser.new_context(base_url=server.url, extra_http_headers=BOB)
    yield context.new_page()
    context.close()


def test_open_the_stacks_page(anonymous: Any) -> None:
    anonymous.goto("/")
    rows = anonymous.locator("table.stacks tbody tr")
    assert rows.count() == 3
    assert "waiting" in rows.filter(has_text="production").inner_text()
    assert "1 drifted" in rows.filter(has_text="dev").inner_text()
    assert anonymous.locator(".anon").inner_text() == "read-only"


def test_open_a_stack_and_expand_a_component(anonymous: Any) -> None:
    anonymous.goto("/")
    anonymous.get_by_role("link", name="dev", exact=True).click()
    anonymous.wait_for_url("**/stacks/shop/dev")
    index = anonymous.locator("details.resource", has_text="index").first
    assert not index.is_visible()
    anonymous.locator("details.component > summary", has_text="storefront").click()
    assert index.is_visible()
    index.locator("summary").click()
    assert "storefront.html" in index.inner_text()


def test_approve_a_waiting_plan_and_see_it_in_the_audit_log(bob: Any, shop: Shop) -> None:
    bob.goto("/plans")
    bob.locator("tr.waiting a.plan").first.click()
    assert shop.plan_hash[:12] in bob.locator("h1").inner_text()
    assert "create db-credentials" in bob.locator(".dag").inner_text()
    bob.fill("input[name=comment]", "reviewed in the browser")
    bob.get_by_role("button", name="Approve as bob@example.com").click()
    assert "Plan approved as bob@example.com" in bob.locator(".flash").inner_text()
    bob.get_by_role("link", name="Audit").click()
    row = bob.locator("table.audit tbody tr", has_text="approve").first
    assert "bob@example.com" in row.inner_text() and "reviewed in the browser" in row.inner_text()
    bob.select_option("select[name=kind]", "plan")
    bob.get_by_role("button", name="Filter").click()
    assert bob.locator("table.audit tbody tr", has_text="approve").count() == 0


def test_an_unauthenticated_user_cannot_approve(anonymous: Any, shop: Shop) -> None:
    anonymous.goto(f"/plans/{shop.plan_hash}")
    assert anonymous.get_by_role("button", name="Approve", exact=False).count() == 0
    assert "read-only" in anonymous.locator(".review-actions").inner_text()
    forged = anonymous.request.post("/review", form={"plan": shop.plan_hash, "decision": "approve"})
    assert forged.status == 403
    anonymous.goto("/audit?kind=approve")
    approvals = anonymous.locator("table.audit tbody tr", has_text="approve").all_inner_texts()
    assert all("bob@example.com" in row for row in approvals), approvals


def test_no_page_holds_a_secret(bob: Any, shop: Shop) -> None:
    secrets = shop.secrets()
    for path in ("/", "/stacks/shop/dev", "/stacks/shop/staging", "/stacks/shop/dev/checkpoints/1",
                 "/plans", f"/plans/{shop.plan_hash}", "/audit", "/graph"):
        bob.goto(path)
        for details in bob.locator("details").all():
            details.evaluate("d => d.open = true")
        html = bob.content()
        assert not any(secret in html for secret in secrets), path
