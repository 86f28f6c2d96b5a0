"""Serving the review app: a local socket, a session token, uvicorn in the foreground or a thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from migrate.errors import InputError
from migrate.project import Project
from migrate.web.app import create_app
from migrate.web.security import LOCAL_HOSTS, new_token

#: Addresses that listen on every interface: the page is then reachable from other machines.
ANY_HOST = ("0.0.0.0", "::")


class ReviewServer:
    """The review app of one project on ``host:port``, opened by a fresh token.

    The socket is bound at construction, so a busy port is reported before anything is
    printed and ``port=0`` picks a free one (tests). ``run`` serves in the foreground
    (the CLI); ``start``/``stop`` serve from a thread (tests).
    """

    def __init__(self, project: Project, host: str = "127.0.0.1", port: int = 8765, who: str | None = None):
        self.token = new_token()
        self.host = host
        self.socket = _bind(host, port)
        self.port = self.socket.getsockname()[1]
        hosts = ("*",) if host in ANY_HOST else tuple(dict.fromkeys((*LOCAL_HOSTS, host)))
        app = create_app(project, self.token, who=who, hosts=hosts)
        # No access log: the first request's URL carries the token.
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        """The app's address without the token."""
        name = "127.0.0.1" if self.host in ANY_HOST else self.host
        return f"http://[{name}]:{self.port}" if ":" in name else f"http://{name}:{self.port}"

    @property
    def url(self) -> str:
        """The link that opens the app (it carries the session token)."""
        return f"{self.base}/?token={self.token}"

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C), then return."""
        try:
            self._server.run(sockets=[self.socket])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on; here it is the way to stop
            pass

    def start(self, timeout: float = 10.0) -> None:
        """Serve from a background thread; returns once the app accepts requests."""
        self._thread = threading.Thread(target=self.run, name="review-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the review server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop a server started with :meth:`start`."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port "
                         "or --host") from exc
    # Listening now queues a browser that follows the printed link before uvicorn is up.
    sock.listen(2048)
    return sock
