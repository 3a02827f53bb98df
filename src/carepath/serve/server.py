"""Running the service: the listening socket, uvicorn, the background work, a clean stop.

SIGTERM (or Ctrl-C) stops accepting connections, lets the requests in hand finish (a posted batch
commits and is answered), lets the pusher finish the batch of actions it holds, then exits 0.
A SIGKILL loses nothing either: every answered event is committed, and what was not answered is
posted again by the client, applied exactly once (SPEC §7).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.runtime import Runtime

__all__ = ["is_loopback", "listen", "serve"]

log = logging.getLogger("carepath.serve")

#: Requests handled at once; past it uvicorn answers 503 (a bound on memory: each may hold a body).
MAX_CONCURRENT = 128


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port). Raises ``OSError``."""
    infos = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1024)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def serve(
    runtime: Runtime,
    sock: socket.socket,
    *,
    token: str | None,
    deliver_url: str | None = None,
    backoff: float = 10.0,
) -> int:
    """Serve ``runtime`` on ``sock`` until SIGTERM or SIGINT; returns the exit code (0)."""
    import uvicorn

    from carepath.serve.app import create_app
    from carepath.serve.push import Pusher
    from carepath.serve.service import Service

    service = Service(runtime, token=token)
    pusher = None if deliver_url is None else Pusher(service, deliver_url, backoff=backoff)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(service.wakeups(), name="carepath-wakeups")]
        if pusher is not None:
            tasks.append(asyncio.create_task(pusher.run(), name="carepath-push"))
        try:
            yield
        finally:
            service.stop.set()  # the loops end after the work in hand
            await asyncio.gather(*tasks, return_exceptions=True)
            await service.close()
            log.info("stopped")

    app = create_app(service, lifespan=lifespan)
    config = uvicorn.Config(
        app,
        log_config=None,  # records go to the carepath handlers (--log-level, --log-format)
        access_log=False,
        lifespan="on",
        limit_concurrency=MAX_CONCURRENT,
        server_header=False,
    )
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"carepath serve: listening on http://{shown}:{port} "
        f"({', '.join(runtime.engines)}; store {runtime.store.url or type(runtime.store).__name__}"
        f"{'; actions to ' + deliver_url if deliver_url else ''})",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn catches SIGTERM/SIGINT, shuts down, then raises the signal again for the handler
    # that was there before: a handler that does nothing makes that a clean exit 0
    previous = {s: signal.signal(s, _stopped) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
    return 0 if server.started else 2


def _stopped(signum: int, frame: Any) -> None:
    """The signal was handled: the server has stopped."""
