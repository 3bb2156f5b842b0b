"""`stackwright serve`: the web view. FastAPI, Jinja2 and uvicorn are imported only
when it runs, so that `stackwright --help` stays fast."""

from __future__ import annotations

from pathlib import Path

import click


def register(cli: click.Group) -> None:
    cli.add_command(serve)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --identity-header.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--identity-header", metavar="NAME",
              help="Header in which the authenticating proxy names the user, e.g. X-Forwarded-Email "
              "(default: `web: identity_header:` of stackwright.yaml).")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, metavar="ADDRESS",
              help="Address or network of that proxy; the header is ignored from anywhere else "
              "(repeatable; default 127.0.0.1 and ::1).")
@click.option("--dev-user", metavar="NAME",
              help="Local development mode: act as NAME without authentication (loopback only, "
              "labelled on every page).")
def serve(host: str, port: int, identity_header: str | None, trusted_proxies: tuple[str, ...],
          dev_user: str | None) -> None:
    """Serve the web view of this project, or of the workspace in this folder."""
    from stackwright.web.server import run
    from stackwright.web.settings import WebSettings, check_safe, web_section
    from stackwright.workflow.dashboard import open_site

    site = open_site(Path.cwd())
    section = web_section(site.projects[0].settings if site.workspace is None else {},
                          str(site.root / "stackwright.yaml"))
    settings = WebSettings(host=host, port=port, identity_header=identity_header or section.identity_header,
                           trusted_proxies=trusted_proxies or tuple(section.trusted_proxies), dev_user=dev_user)
    check_safe(settings)
    run(site, settings, announce=lambda url: click.echo(f"Serving {site.root} on {url}", err=True))
