"""Running the web view under uvicorn."""

from __future__ import annotations

import socket
from collections.abc import Callable

from stackwright.web.settings import WebSettings
from stackwright.workflow.dashboard import Site


def run(site: Site, settings: WebSettings, announce: Callable[[str], None]) -> None:
    """Serve until interrupted. The socket is bound here (port 0 picks a free one) so
    that the address printed is the one listening (connections wait in its backlog
    until uvicorn accepts them).

    uvicorn's ``proxy_headers`` stays off: the client address must be the proxy's own,
    because that is what decides whether the identity header is believed."""
    import uvicorn

    from stackwright.web.app import create_app

    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    announce(f"http://{shown}:{port}/")
    config = uvicorn.Config(create_app(site, settings), proxy_headers=False, server_header=False,
                            log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
