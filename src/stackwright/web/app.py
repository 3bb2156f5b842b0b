"""The web view: FastAPI routes that read ``workflow.dashboard`` and render it, as HTML
(Jinja2 templates, no JavaScript) and as JSON under ``/api/``.

Thin by design: every value comes from ``workflow.dashboard``, every review goes
through ``workflow.approvals`` as `stackwright approve|reject` does, and the pictures
come from ``workflow.drawing``. The only decision made here is who is asking
(``settings``), and that forms carry a CSRF token (``asgi_csrf``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from stackwright.errors import NotRecordedError, ProjectError, ReadOnlyStateError, StackwrightError, StateError
from stackwright.workflow import dashboard, drawing
from stackwright.workflow.approvals import ApprovalRefused, UnknownPlan, iso_time
from stackwright.web.settings import Identity, WebSettings

HERE = Path(__file__).parent
REVIEW_PATH = "/review"
"""The one form that changes anything; always CSRF-checked, cookie or not."""
NOT_FOUND = (dashboard.UnknownProject, NotRecordedError, UnknownPlan)
UNAVAILABLE = (StateError, ProjectError)
"""The state store cannot be reached or read, or the project's files are broken: an
outage (503) that monitoring must see, unlike a page naming nothing (404)."""
OUT_OF_RANGE = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
TITLES = {403: "Not allowed", 404: "Not here", 409: "Refused", 422: "Not understood", 503: "Unavailable"}
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]


@dataclass(frozen=True)
class ErrorOut:
    error: str
    hint: str | None = None


@dataclass(frozen=True)
class PlanOut:
    pending: dashboard.PendingPlan
    markdown: str
    problem: str
    waves: list[list[str]]


@dataclass(frozen=True)
class GraphOut:
    stacks: list[dashboard.StackSummary]
    gates: list[tuple[str, str]]


@dataclass(frozen=True)
class WhoAmI:
    identity: str | None
    auth: str | None
    dev_mode: bool


OUTAGE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "The state store cannot be reached or read"}}
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, **OUTAGE}


def create_app(site: dashboard.Site, settings: WebSettings) -> Any:
    """The ASGI application: FastAPI wrapped in the CSRF middleware."""
    from asgi_csrf import asgi_csrf

    app = FastAPI(title="Stackwright", version="1", docs_url=None, redoc_url=None, description="Stacks, plans awaiting approval, "
                  "history, drift and the workspace graph. Every page has a JSON twin under /api/.")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    pages = Jinja2Templates(directory=HERE / "templates")
    pages.env.filters.update(ago=dashboard.age, iso=iso_time, pretty=_pretty)
    pages.env.globals.update(colours=drawing.STATUS_COLOURS, statuses=dashboard.STATUSES)
    app.state.site, app.state.settings, app.state.pages = site, settings, pages
    _errors(app)
    _headers(app)
    _html_routes(app)
    _api_routes(app)
    _metrics_route(app)
    return asgi_csrf(app, always_protect={REVIEW_PATH}, cookie_name="stackwright_csrf")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def who(request: Request) -> Identity | None:
    settings: WebSettings = request.app.state.settings
    return settings.identity(request.client.host if request.client else None, request.headers)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    settings: WebSettings = request.app.state.settings
    token = request.scope.get("csrftoken")
    response: HTMLResponse = request.app.state.pages.TemplateResponse(
        request, template, {"me": who(request), "dev_mode": settings.dev_mode,
                            "csrftoken": token() if callable(token) else "", **context},
        status_code=status)
    return response


def status_of(exc: StackwrightError) -> int:
    """What the client should make of an error: 404 when the page names nothing, 503
    when the state (or the project) cannot be read, 409 for a refused change."""
    if isinstance(exc, NOT_FOUND):
        return 404
    if isinstance(exc, ApprovalRefused):
        return 403
    if isinstance(exc, ReadOnlyStateError):
        return 409
    return 503 if isinstance(exc, UNAVAILABLE) else 409


def _errors(app: FastAPI) -> None:
    @app.exception_handler(StackwrightError)
    async def refused(request: Request, exc: StackwrightError) -> Response:
        title = "Read-only" if isinstance(exc, ReadOnlyStateError) else None
        return error_page(request, status_of(exc), exc.headline(), exc.hint, title)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        status, error, hint = _invalid(exc.errors())
        if status == 422 and request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        return error_page(request, status, error, hint)


def error_page(request: Request, status: int, error: str, hint: str | None, title: str | None = None) -> Response:
    """An error as the route's kind of answer: JSON under /api/, text for /metrics
    (its scrapers read no HTML), else a page."""
    path = request.url.path
    if path.startswith("/api/"):
        return JSONResponse(asdict(ErrorOut(error, hint)), status_code=status)
    if path == "/metrics":
        return PlainTextResponse(f"error: {error}\n", status_code=status)
    return render(request, "error.html", status, error=error, hint=hint, title=title or TITLES.get(status, "Refused"))


def _invalid(problems: Sequence[Any]) -> tuple[int, str, str | None]:
    """A parameter FastAPI could not take: a path that names nothing, or a number out of
    its range, is not here (404); anything else was not understood (422)."""
    for problem in problems:
        if problem["loc"][0] == "path" or problem["type"] in OUT_OF_RANGE:
            return 404, f"no {problem['loc'][-1]} {str(problem.get('input'))[:60]}", str(problem["msg"])
    first = problems[0]
    return 422, f"{'.'.join(map(str, first['loc'][1:]))}: {first['msg']}", None


def _headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started, cpu = time.perf_counter(), time.process_time()
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "frame-ancestors 'none'; form-action 'self'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Server-Timing"] = (f"app;dur={(time.perf_counter() - started) * 1000:.1f}, "
                                             f"cpu;dur={(time.process_time() - cpu) * 1000:.1f}")
        return response


# --- pages -------------------------------------------------------------------------------


def _html_routes(app: FastAPI) -> None:
    site: dashboard.Site = app.state.site

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def stacks_page(request: Request) -> HTMLResponse:
        stacks = dashboard.stack_summaries(site)
        counts = {s: sum(1 for x in stacks if x.status == s) for s in dashboard.STATUSES}
        return render(request, "stacks.html", stacks=stacks, counts=counts, workspace=site.workspace is not None)

    @app.get("/stacks/{project}/{stack}", response_class=HTMLResponse, include_in_schema=False)
    def stack_page(request: Request, project: str, stack: str, page: PageNumber = 1,
                   history: PageNumber = 1) -> HTMLResponse:
        detail = dashboard.stack_page(site, project, stack, page, history)
        return render(request, "stack.html", s=detail, tree=dashboard.nest(detail.rows))

    @app.get("/stacks/{project}/{stack}/checkpoints/{number}", response_class=HTMLResponse, include_in_schema=False)
    def checkpoint_page(request: Request, project: str, stack: str, number: int) -> HTMLResponse:
        detail = dashboard.checkpoint_changes(site, project, stack, number)
        return render(request, "checkpoint.html", project=project, stack=stack, c=detail)

    @app.get("/plans", response_class=HTMLResponse, include_in_schema=False)
    def plans_page(request: Request) -> HTMLResponse:
        return render(request, "plans.html", plans=dashboard.pending_plans(site))

    @app.get("/plans/{plan_hash}", response_class=HTMLResponse, include_in_schema=False)
    def plan_page(request: Request, plan_hash: str, done: str = "") -> HTMLResponse:
        return _plan_page(request, plan_hash, done=done)

    @app.post(REVIEW_PATH, response_class=HTMLResponse, include_in_schema=False)
    def review(request: Request, plan: Annotated[str, Form()], decision: Annotated[str, Form()],
               comment: Annotated[str, Form()] = "") -> Response:
        me = who(request)
        if me is None:
            return _plan_page(request, plan, status=401,
                              error="sign in to review plans: this view is read-only for anonymous visitors")
        try:
            dashboard.review(site, plan, me.name, me.auth, approve=decision == "approve", comment=comment)
        except ApprovalRefused as exc:
            return _plan_page(request, plan, status=403, error=exc.headline(), hint=exc.hint)
        verb = "approved" if decision == "approve" else "rejected"
        return RedirectResponse(f"/plans/{plan}?done={verb}", status_code=303)

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, stack: str = "", kind: str = "", who: str = "", q: str = "",
                   page: PageNumber = 1) -> HTMLResponse:
        rows = dashboard.audit_page(site, stack=stack, kind=kind, who=who, text=q, page=page)
        return render(request, "audit.html", a=rows, f={"stack": stack, "kind": kind, "who": who, "q": q})

    @app.get("/graph", response_class=HTMLResponse, include_in_schema=False)
    def graph_page(request: Request) -> HTMLResponse:
        stacks = dashboard.stack_summaries(site)
        picture = drawing.svg(drawing.workspace_dot(stacks, dashboard.gate_edges(site, stacks)))
        return render(request, "graph.html", svg=picture, stacks=stacks)


def _plan_page(request: Request, plan_hash: str, status: int = 200, done: str = "", error: str = "",
               hint: str | None = None) -> HTMLResponse:
    from markdown_it import MarkdownIt

    site: dashboard.Site = request.app.state.site
    review = dashboard.plan_review(site, plan_hash)
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(review.markdown)
    picture = drawing.svg(drawing.plan_dot(review.plan)) if review.plan is not None else ""
    return render(request, "plan.html", status, r=review, p=review.pending, review_html=html, svg=picture,
                  done=done, error=error, hint=hint)


# --- the JSON twins ----------------------------------------------------------------------


def _api_routes(app: FastAPI) -> None:
    site: dashboard.Site = app.state.site

    @app.get("/api/stacks", response_model=list[dashboard.StackSummary], responses=OUTAGE, tags=["stacks"])
    def api_stacks() -> list[dashboard.StackSummary]:
        """Every stack: environment, last apply, resources, plans waiting, drift, status."""
        return dashboard.stack_summaries(site)

    @app.get("/api/stacks/{project}/{stack}", response_model=dashboard.StackPage, responses=ERRORS,
             tags=["stacks"])
    def api_stack(project: str, stack: str, page: PageNumber = 1, history: PageNumber = 1) -> dashboard.StackPage:
        """One stack: a page of its resource tree (secrets masked) and of its checkpoints."""
        return dashboard.stack_page(site, project, stack, page, history)

    @app.get("/api/stacks/{project}/{stack}/checkpoints/{number}", response_model=dashboard.CheckpointChanges,
             responses=ERRORS, tags=["stacks"])
    def api_checkpoint(project: str, stack: str, number: int) -> dashboard.CheckpointChanges:
        """What one checkpoint changed, property by property (secrets masked)."""
        return dashboard.checkpoint_changes(site, project, stack, number)

    @app.get("/api/plans", response_model=list[dashboard.PendingPlan], responses=OUTAGE, tags=["plans"])
    def api_plans() -> list[dashboard.PendingPlan]:
        """Saved plans not applied yet, newest first, with their approvals."""
        return dashboard.pending_plans(site)

    @app.get("/api/plans/{plan_hash}", response_model=PlanOut, responses=ERRORS, tags=["plans"])
    def api_plan(plan_hash: str) -> PlanOut:
        """One plan: its review Markdown and the waves of its resource DAG."""
        review = dashboard.plan_review(site, plan_hash)
        waves = drawing.waves(review.plan) if review.plan is not None else []
        return PlanOut(review.pending, review.markdown, review.problem, waves)

    @app.get("/api/audit", response_model=dashboard.AuditPage, responses=ERRORS, tags=["audit"])
    def api_audit(stack: str = "", kind: str = "", who: str = "", q: str = "",
                  page: PageNumber = 1) -> dashboard.AuditPage:
        """The audit log, newest first, filtered by stack, kind, identity and text."""
        return dashboard.audit_page(site, stack=stack, kind=kind, who=who, text=q, page=page)

    @app.get("/api/graph", response_model=GraphOut, responses=OUTAGE, tags=["stacks"])
    def api_graph() -> GraphOut:
        """The stacks with their dependencies and gates: what /graph draws."""
        stacks = dashboard.stack_summaries(site)
        return GraphOut(stacks, dashboard.gate_edges(site, stacks))

    @app.get("/api/whoami", response_model=WhoAmI, tags=["identity"])
    def api_whoami(request: Request) -> WhoAmI:
        """Who the web view takes you for; anonymous visitors may only read."""
        me = who(request)
        return WhoAmI(me.name if me else None, me.auth if me else None, app.state.settings.dev_mode)


def _metrics_route(app: FastAPI) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from stackwright.web.metrics import StateCollector

    registry = CollectorRegistry()
    registry.register(StateCollector(app.state.site))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
