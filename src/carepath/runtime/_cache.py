"""Decoded case states, reused when a row still holds exactly the text this process last wrote or read.

Decoding a state (``CaseState.from_json``) costs about as much as a third of an engine step. A
worker that owns its cases' events (partitioned by key) reads back, batch after batch, the very
rows it wrote; keeping the ``(text, state)`` pair lets it skip the decoding when the locked row's
text is unchanged. The cache is only ever consulted with the row's current text, so it can never
return anything but what decoding that text would give: a row changed by another worker simply
misses.
"""

from __future__ import annotations

from carepath.state import CaseState

__all__ = ["StateCache"]


class StateCache:
    """Up to ``size`` ``(text, state)`` pairs keyed by ``(playbook, case)``, oldest evicted first
    (``size=0``: no cache). Safe to share between threads: each entry is self-consistent, so a
    race costs at most a miss."""

    __slots__ = ("_d", "hits", "misses", "size")

    def __init__(self, size: int = 4096) -> None:
        self.size = max(0, size)
        self._d: dict[tuple[str, str], tuple[str, CaseState]] = {}
        self.hits = 0
        self.misses = 0

    def decode(self, playbook: str, case: str, text: str) -> CaseState:
        """The state stored as ``text`` for ``(playbook, case)``."""
        k = (playbook, case)
        got = self._d.get(k)
        if got is not None and got[0] == text:
            self.hits += 1
            return got[1]
        self.misses += 1
        state = CaseState.from_json(text)
        self._put(k, text, state)
        return state

    def encode(self, state: CaseState) -> str:
        """``state.to_json()``, remembered for the next :meth:`decode` of its row."""
        text = state.to_json()
        self._put((state.playbook, state.case), text, state)
        return text

    def _put(self, k: tuple[str, str], text: str, state: CaseState) -> None:
        if not self.size:
            return
        d = self._d
        d.pop(k, None)
        d[k] = (text, state)
        while len(d) > self.size:
            try:
                del d[next(iter(d))]
            except (StopIteration, KeyError, RuntimeError):  # another thread got there first
                break

    def clear(self) -> None:
        """Forget everything (a test, or a host that edited rows by hand)."""
        self._d.clear()
