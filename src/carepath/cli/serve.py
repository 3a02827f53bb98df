"""``carepath serve PLAYBOOK…``: the runtime behind HTTP/JSON (SPEC §9).

Events come in as ``POST /events``; wake-ups fire on the system clock; actions wait in the outbox
to be claimed (``POST /outbox/claim``, then ``ack``/``nack``), or with ``--deliver-url`` are
POSTed there one by one (``Idempotency-Key: <action id>``). The API is described at
``/openapi.json``; see ``docs/integration.md``. Needs the ``serve`` extra
(``pip install 'carepath[serve]'``).

With a token (``--token-file``, or ``CAREPATH_TOKEN``) every endpoint but ``/healthz`` needs
``Authorization: Bearer <token>``; without one the service listens on loopback only.
SIGTERM finishes the requests in hand and exits 0. A command that refuses to start exits 2: so
does ``serve`` on a store holding open cases of another version of a playbook given (move them
first with ``carepath cases migrate``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HELP = "serve playbooks over HTTP/JSON: events in, cases, pull or webhook delivery, metrics"
ORDER = 62
DEFAULT_STORE = "sqlite:///cases.db"

#: What the ``serve`` extra brings, by import name.
EXTRA = ("fastapi", "uvicorn", "prometheus_client", "httpx")


def register(sub: Any) -> None:
    """Add the ``serve`` sub-command."""
    p = sub.add_parser(
        "serve",
        help=HELP,
        description=__doc__.split("\n\n")[0] if __doc__ else HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 stopped by SIGTERM or Ctrl-C, 2 refused to start (bad arguments, "
        "an unreadable playbook or store, a port in use, the serve extra not installed)",
    )
    p.add_argument("playbooks", nargs="+", metavar="PLAYBOOK", help="playbook files")
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="URL",
        help=f"the case store (default: {DEFAULT_STORE}; postgresql://… for many workers)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1; another than loopback needs a token)",
    )
    p.add_argument(
        "--port", type=int, default=8080, help="the port to listen on (default: 8080; 0: any free)"
    )
    p.add_argument(
        "--token-file",
        metavar="F",
        help="a file holding the bearer token clients must send (default: $CAREPATH_TOKEN)",
    )
    p.add_argument(
        "--deliver-url",
        metavar="URL",
        help="POST each due action there (a 2xx answer delivers it; anything else is retried)",
    )
    p.add_argument(
        "--backoff",
        type=float,
        default=10.0,
        metavar="S",
        help="with --deliver-url, seconds before the first retry of a failed delivery, doubling "
        "after each (default: 10; at most 60)",
    )
    p.add_argument(
        "--roster",
        metavar="FILE",
        help="agents (YAML or JSON) the allocator assigns cases to (SPEC §10)",
    )
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    print(f"carepath: {msg}", file=sys.stderr)
    return 2


def _missing_extra() -> list[str]:
    missing = []
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _token(args: argparse.Namespace) -> str | None:
    """The token, or ``None``; ``ValueError`` saying what is wrong with it."""
    if args.token_file is not None:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--token-file {args.token_file}: cannot read it: {exc}") from None
        where = f"--token-file {args.token_file}"
    else:
        text = os.environ.get("CAREPATH_TOKEN", "")
        if not text:
            return None
        where = "CAREPATH_TOKEN"
    token = text.strip()
    if not token:
        raise ValueError(f"{where}: the token is empty")
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise ValueError(f"{where}: a token is printable ASCII without spaces")
    return token


def _check(args: argparse.Namespace, token: str | None) -> str | None:
    """Why the options cannot be served, or ``None``."""
    from carepath.serve.server import is_loopback

    if not 0 <= args.port <= 65535:
        return f"--port {args.port}: expected 0 to 65535"
    if token is None and not is_loopback(args.host):
        return (
            f"--host {args.host}: without a token (--token-file or CAREPATH_TOKEN) serve "
            "listens on loopback only (127.0.0.1, ::1, localhost)"
        )
    if args.deliver_url is not None:
        url = urlsplit(args.deliver_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            return f"--deliver-url {args.deliver_url!r}: expected an http:// or https:// URL"
    if not 0 < args.backoff <= 60:
        return f"--backoff {args.backoff}: expected more than 0 and at most 60 seconds"
    return None


def run(args: argparse.Namespace) -> int:
    """Run; return the exit code."""
    try:
        token = _token(args)
    except ValueError as exc:
        return _fail(str(exc))
    problem = _check(args, token)
    if problem is not None:
        return _fail(problem)
    missing = _missing_extra()
    if missing:
        return _fail(
            f"serve needs the serve extra (missing: {', '.join(missing)}): "
            "pip install 'carepath[serve]'"
        )
    from datetime import timedelta

    from carepath._terminal import term_safe
    from carepath.cli.common import load_playbooks, read_roster
    from carepath.runtime import Runtime, StoreError, open_store
    from carepath.runtime.migrate import check_versions
    from carepath.serve.server import listen, serve

    playbooks = load_playbooks(args.playbooks)
    if isinstance(playbooks, int):
        return 2  # a playbook that cannot be run: refuse to start
    roster = read_roster(args.roster, playbooks)
    if isinstance(roster, int):
        return roster
    try:
        store = open_store(args.store)
    except (StoreError, OSError, ValueError) as exc:
        return _fail(f"--store: {exc}")
    try:
        why = check_versions(
            store,
            playbooks,
            {pb.id: path for pb, path in zip(playbooks, args.playbooks, strict=True)},
            url=args.store,
        )
        if why is not None:  # their events would be rejected one by one: refuse to start
            return _fail(term_safe(why))
        runtime = Runtime(playbooks, store, backoff=timedelta(seconds=args.backoff), roster=roster)
        try:
            sock = listen(args.host, args.port)
        except OSError as exc:
            return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return serve(runtime, sock, token=token, deliver_url=args.deliver_url, backoff=args.backoff)
    finally:
        store.close()
