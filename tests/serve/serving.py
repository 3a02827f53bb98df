"""Real ``carepath serve`` processes on loopback, a real receiver for ``--deliver-url``, and the
playbooks the serve tests run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

import httpx

# every ticket gets a `send` at once and a `notify` an hour later; notes each get a `send`
TICKETS = """
carepath: 1
id: tickets
version: "1"
timezone: UTC
start: {on: ticket.opened}
stages:
  open:
    initial: true
    enter: [{send: hello}, {notify: L1, in: 1h, keep: true}]
    on:
      note.added: {do: [{send: noted}]}
      ticket.closed: done
  done: {final: true}
slas:
  reply:
    start: {on: ticket.opened}
    stop: {on: ticket.closed}
    calendar: always
    targets: [{within: 30m}]
tiers:
  L1: {title: Agent}
"""

WAIT = 30.0  # the longest a test waits for a process or a condition, in seconds


def ago(**kw: float) -> datetime:
    """The real time, less ``kw`` (the service runs on the system clock)."""
    return datetime.now(UTC) - timedelta(**kw)


def event(eid: str, type_: str, case: str, at: datetime, **data: Any) -> dict[str, Any]:
    """An event object."""
    return {"id": eid, "type": type_, "at": at.isoformat(), "case": case, "data": data}


def until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns something true (a real process on the real clock)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Served:
    """A running ``carepath serve`` process."""

    proc: subprocess.Popen[bytes]
    err: Path
    url: str = ""

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=WAIT, **kw)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(WAIT)


def serve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "carepath", "serve", *args]


def start(tmp: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True) -> Served:
    """Start ``carepath serve ARGS --port 0``; with ``wait``, return once it listens."""
    err = tmp / f"serve-{time.monotonic_ns()}.err"
    full_env = {k: v for k, v in os.environ.items() if k != "CAREPATH_TOKEN"}
    full_env.update(env or {})
    with err.open("wb") as fh:
        proc = subprocess.Popen(
            serve_cmd(*args, "--port", "0"),
            stdout=subprocess.DEVNULL,
            stderr=fh,
            env=full_env,
            cwd=tmp,
        )
    served = Served(proc, err)
    if not wait:
        return served

    def listening() -> str | None:
        m = re.search(r"listening on (http://\S+)", served.stderr())
        if m is None and proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {served.stderr()}")
        return m.group(1) if m else None

    served.url = until(listening, "serve to listen")
    return served


@pytest.fixture
def tickets(tmp_path: Path) -> Path:
    path = tmp_path / "tickets.yaml"
    path.write_text(TICKETS, encoding="utf-8")
    return path


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``launch(*args, env=…)``: start a server, stopped (SIGKILL if need be) after the test."""
    started: list[Served] = []

    def go(*args: str, **kw: Any) -> Served:
        s = start(tmp_path, *args, **kw)
        started.append(s)
        return s

    yield go
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(WAIT)


@dataclass
class Receiver:
    """A tiny HTTP receiver for ``--deliver-url`` on loopback: it records every POST (the
    ``Idempotency-Key`` and the body) and answers ``fail(key, n)``'s status for the n-th
    delivery of a key (default: 200)."""

    fail: Callable[[str, int], int] = lambda key, n: 200
    got: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                key = self.headers.get("Idempotency-Key", "")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with receiver.lock:
                    n = sum(1 for k, _ in receiver.got if k == key)
                    receiver.got.append((key, body))
                status = receiver.fail(key, n)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/actions"

    def keys(self) -> set[str]:
        with self.lock:
            return {k for k, _ in self.got}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        r = Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()
