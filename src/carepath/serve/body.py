"""The body of ``POST /events``: read within its limit, decoded as strict JSON (SPEC §9).

The limit is kept while the body arrives: a ``Content-Length`` over it is refused before a byte is
read, and a body sent in chunks is refused as soon as it passes the limit, so the service never
holds more than :data:`MAX_BODY` bytes of one request.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

from carepath.serve.models import MAX_EVENTS

__all__ = ["MAX_BODY", "BadBody", "BodyTooLarge", "decode_events", "read_limited"]

#: The largest body of ``POST /events``: 16 MiB.
MAX_BODY = 16 * 1024 * 1024


class BadBody(ValueError):
    """A body that is not JSON (``400``)."""


class BodyTooLarge(ValueError):
    """A body over :data:`MAX_BODY`, or more than :data:`MAX_EVENTS` events (``413``)."""


async def read_limited(
    content_length: str | None, chunks: AsyncIterator[bytes], limit: int = MAX_BODY
) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it is known to pass ``limit``."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadBody(f"Content-Length {content_length!r} is not a number") from None
        if declared > limit:
            raise BodyTooLarge(f"the body is {declared:,} bytes; the limit is {limit:,} (16 MiB)")
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise BodyTooLarge(f"the body passes {limit:,} bytes (16 MiB), the limit")
    return bytes(buf)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (events hold finite numbers only)")


def _finite(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"{text} is beyond the range of a float")
    return x


_strict = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _loads(body: bytes) -> Any:
    """Strict JSON with the standard decoder, as event lines are read (integers keep every digit;
    ``NaN``, ``Infinity`` and numbers past a float's range are refused)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        return _strict.decode(text)
    except RecursionError:
        raise BadBody("the body nests too deep") from None
    except ValueError as exc:
        raise BadBody(f"the body is not JSON: {exc}") from None


def decode_events(body: bytes) -> list[Any]:
    """The events of a body: one JSON value, or an array of at most :data:`MAX_EVENTS`. Anything
    in it that is not a valid event is passed on: the runtime rejects it, with its reason, and
    records it (a value that is not an object is recorded as its JSON text)."""
    if not body.strip():
        raise BadBody("the body is empty: send an event object or an array of events")
    doc = _loads(body)
    if isinstance(doc, list):
        if len(doc) > MAX_EVENTS:
            raise BodyTooLarge(f"{len(doc):,} events in one request; the limit is {MAX_EVENTS:,}")
        return [_as_value(x) if isinstance(x, str) else x for x in doc]
    return [_as_value(doc) if isinstance(doc, str) else doc]


def _as_value(text: str) -> str:
    """A JSON string of the body as the runtime takes a decoded JSON value: its JSON text (the
    runtime reads a ``str`` as a raw line, and this one is a value that is not an object)."""
    return json.dumps(text, ensure_ascii=False)
