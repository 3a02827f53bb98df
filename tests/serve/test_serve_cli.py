"""``carepath serve`` as a command: bearer-token authentication, loopback without a token, the
refusals to start (exit 2) and a clean stop on SIGTERM (exit 0). Real processes, real HTTP."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from serving import WAIT, Served, ago, event, launch, serve_cmd, tickets

__all__ = ["launch", "tickets"]  # fixtures

TOKEN = "s3cret-token_0123456789"


def _refused(tmp: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run serve expecting a refusal: exit 2 and one line on standard error."""
    import os

    full = {k: v for k, v in os.environ.items() if k != "CAREPATH_TOKEN"}
    full.update(env or {})
    r = subprocess.run(
        serve_cmd(*args), capture_output=True, text=True, timeout=WAIT, env=full, cwd=tmp
    )
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("carepath: "), r.stderr
    return lines[0]


def _every_endpoint(http: httpx.Client) -> dict[str, int]:
    return {
        "events": http.post("/events", json=[]).status_code,
        "case": http.get("/cases/tickets/T-1").status_code,
        "cases": http.get("/cases").status_code,
        "claim": http.post("/outbox/claim").status_code,
        "ack": http.post("/outbox/T-1:1/ack").status_code,
        "nack": http.post("/outbox/T-1:1/nack").status_code,
        "metrics": http.get("/metrics").status_code,
        "openapi": http.get("/openapi.json").status_code,
    }


def test_with_a_token_every_endpoint_but_healthz_needs_it(
    launch: Callable[..., Served], tickets: Path, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n", encoding="utf-8")
    s = launch(str(tickets), "--token-file", "token")
    with s.client() as anonymous, s.client("wrong") as wrong, s.client(TOKEN + "x") as longer:
        for c in (anonymous, wrong, longer):
            got = _every_endpoint(c)
            assert set(got.values()) == {401}, got
            assert c.get("/healthz").status_code == 200
        r = anonymous.post("/events", json=[])
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json() == {"detail": "a valid `Authorization: Bearer <token>` header is required"}
        basic = anonymous.get("/cases", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
    with s.client(TOKEN) as ok:
        got = _every_endpoint(ok)
        assert got == {**got, "events": 200, "cases": 200, "claim": 200, "metrics": 200}
        assert got["case"] == 404 and got["ack"] == 200 and got["openapi"] == 200
        doc = ok.get("/openapi.json").json()
        assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert s.stop() == 0


def test_the_token_may_come_from_the_environment_and_then_any_host_is_allowed(
    launch: Callable[..., Served], tickets: Path
) -> None:
    s = launch(str(tickets), "--host", "0.0.0.0", env={"CAREPATH_TOKEN": TOKEN})
    assert s.url.startswith("http://0.0.0.0:")
    port = s.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as c:
        assert c.get("/cases").status_code == 401
        assert c.get("/cases", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert s.stop() == 0


def test_without_a_token_only_loopback(tmp_path: Path, tickets: Path) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.org"):
        msg = _refused(tmp_path, str(tickets), "--host", host)
        assert f"--host {host}: without a token" in msg and "loopback only" in msg


def test_refusals_to_start(tmp_path: Path, tickets: Path) -> None:
    (tmp_path / "empty").write_text(" \n", encoding="utf-8")
    (tmp_path / "spaced").write_text("two words", encoding="utf-8")
    assert "the token is empty" in _refused(tmp_path, str(tickets), "--token-file", "empty")
    assert "without spaces" in _refused(tmp_path, str(tickets), "--token-file", "spaced")
    assert "cannot read it" in _refused(tmp_path, str(tickets), "--token-file", "missing")
    assert "CAREPATH_TOKEN" in _refused(tmp_path, str(tickets), env={"CAREPATH_TOKEN": "a b"})
    assert "--port 70000" in _refused(tmp_path, str(tickets), "--port", "70000")
    assert "--deliver-url" in _refused(tmp_path, str(tickets), "--deliver-url", "ftp://x/")
    assert "--backoff 61" in _refused(tmp_path, str(tickets), "--backoff", "61")
    assert "--store" in _refused(tmp_path, str(tickets), "--store", "mysql://x")
    assert "no such file" in _refused(tmp_path, "nope.yaml")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        assert "cannot listen on 127.0.0.1:" in _refused(tmp_path, str(tickets), "--port", port)


def test_refuses_a_store_with_open_cases_of_another_version(
    launch: Callable[..., Served], tickets: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'v.db'}"
    s = launch(str(tickets), "--store", store)
    with s.client() as http:
        http.post("/events", json=event("v1", "ticket.opened", "V-1", ago(minutes=1)))
    assert s.stop() == 0
    v2 = tmp_path / "v2.yaml"
    v2.write_text(tickets.read_text(encoding="utf-8").replace('version: "1"', 'version: "2"'))
    assert "carepath cases migrate" in _refused(tmp_path, str(v2), "--store", store)


def test_without_the_serve_extra_one_line_and_exit_2(tmp_path: Path, tickets: Path) -> None:
    fake = tmp_path / "site"
    (fake / "fastapi").mkdir(parents=True)
    (fake / "fastapi" / "__init__.py").write_text("raise ImportError('not installed')\n")
    msg = _refused(tmp_path, str(tickets), env={"PYTHONPATH": str(fake)})
    assert "pip install 'carepath[serve]'" in msg and "fastapi" in msg


def test_import_carepath_stays_light() -> None:
    code = (
        "import sys, carepath, carepath.cli.app as a; a.build_parser(); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'prometheus_client', "
        "'httpx', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sigterm_finishes_the_batch_in_hand_and_exits_0(
    launch: Callable[..., Served], tickets: Path
) -> None:
    s = launch(str(tickets))
    t = ago(minutes=5)
    body = json.dumps([event(f"g{i}", "ticket.opened", f"G-{i}", t) for i in range(1000)]).encode()
    host, port = s.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT) as conn:
        head = f"POST /events HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n"
        conn.sendall(head.encode() + body[:-1])  # the batch in hand, all but its last byte
        with s.client() as http:  # answered after the server has read what came before
            assert http.get("/healthz").status_code == 200
        s.proc.send_signal(signal.SIGTERM)
        conn.sendall(body[-1:])
        raw = b""
        while chunk := conn.recv(1 << 16):
            raw += chunk
    status, _, rest = raw.partition(b"\r\n")
    assert status == b"HTTP/1.1 200 OK"
    answer = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert [r["status"] for r in answer] == ["applied"] * 1000
    assert s.proc.wait(WAIT) == 0
    assert "Traceback" not in s.stderr()
    with pytest.raises(httpx.ConnectError), s.client() as http:
        http.get("/healthz")


def test_log_format_json_every_stderr_line_is_a_json_object(
    launch: Callable[..., Served], tickets: Path
) -> None:
    s = launch(str(tickets), "--log-format", "json", "--log-level", "INFO")
    with s.client() as http:
        r = http.post("/events", json=event("j1", "note.added", "J-404", ago(minutes=1)))
        assert r.json()[0]["reason"] == "unknown_case"
    assert s.stop() == 0
    records = [json.loads(line) for line in s.stderr().splitlines()]
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert any("listening on http://127.0.0.1:" in r["msg"] for r in records)
    [rejected] = [r for r in records if r.get("event_id") == "j1"]
    assert rejected["level"] == "warning" and "unknown_case" in rejected["msg"]
