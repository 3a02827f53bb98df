"""Untrusted text made safe to print on a terminal (issue 15 #24).

Case ids, event ids and types, rejection messages and payload values come from whoever writes
the events. Printed raw, an ESC or a C1 CSI (U+009B) starts a terminal control sequence (clear
the screen, retitle the window, fake a prompt), a newline or carriage return forges a line of
output, and a bidi override (U+202E) makes ``evil.exe`` read as ``exe.live``. :func:`term_safe`
writes each such character as a visible escape: C0 controls (tab and newline included), DEL, C1
controls, the bidi embeddings, overrides, isolates and marks, and the line and paragraph
separators. Everything else — accents, CJK, emoji — is left alone.

>>> term_safe("T-1\\x1b]0;pwned\\x07")
'T-1\\\\x1b]0;pwned\\\\x07'
>>> term_safe("Nguyễn Thị Mai")
'Nguyễn Thị Mai'
>>> term_safe("gnp.\\u202eexe")
'gnp.\\\\u202eexe'
>>> json_term_safe('{"case": "T-1\\u009b2J"}')
'{"case": "T-1\\\\u009b2J"}'
"""

from __future__ import annotations

import re

__all__ = ["json_term_safe", "term_safe"]

_BEYOND_ASCII = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_BEYOND_ASCII}]")
# json.dumps escapes C0 controls inside strings itself; outside strings they are its whitespace
_JSON_UNSAFE = re.compile(f"[{_BEYOND_ASCII}]")


def _escape(m: re.Match[str]) -> str:
    o = ord(m.group())
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def term_safe(text: object) -> str:
    """``str(text)`` with every terminal control, bidi control and line break written as a
    visible ``\\xNN`` / ``\\uNNNN`` escape."""
    s = str(text)
    return _UNSAFE.sub(_escape, s) if _UNSAFE.search(s) else s


def json_term_safe(doc: str) -> str:
    """A JSON text (from ``json.dumps``, which escapes C0 controls in strings) with DEL, C1 and the
    bidi and separator characters above as ``\\uNNNN`` escapes: the same JSON value (they can
    only occur inside strings, where the escape means the character), safe on a terminal."""
    return _JSON_UNSAFE.sub(_json_escape, doc)
