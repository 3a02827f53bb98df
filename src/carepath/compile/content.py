"""The content hash of a playbook (SPEC §4.7): what ``CaseState.content_hash`` records.

The hash is taken over the validated model's canonical JSON. Keys added to format 1 after states
were stored are left out at the value that means "not used", so a playbook that does not use them
keeps its hash — and its open cases stay valid — across an upgrade of carepath.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carepath.model import PlaybookSpec

__all__ = ["content_hash"]


def content_hash(spec: PlaybookSpec) -> str:
    """128 bits of SHA-256 over the canonical JSON of ``spec`` (ample, and states stay small)."""
    canon = json.dumps(
        _unset_new_keys(spec.model_dump(mode="json", by_alias=True)),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canon.encode()).hexdigest()[:32]


#: Keys added to format 1 after states were stored (SPEC §10), with the value that means "not
#: used".
_NEW_ROOT = {"consent_default": True, "customer_timezone": None, "retention": None}
_NEW_ACTION = {"when": None, "fallback": None}
_NEW_CAP = {"mode": "drop", "exempt": []}
_NEW_FIELD = {"pii": False}


def _unset_new_keys(node: Any) -> Any:
    """``node`` (the model's JSON) without the new keys at their defaults."""
    if isinstance(node, list):
        return [_unset_new_keys(v) for v in node]
    if not isinstance(node, dict):
        return node
    drop: dict[str, Any] = {}
    if "carepath" in node and "stages" in node:
        drop = _NEW_ROOT
    elif "keep" in node and "params" in node and "message" in node:  # an action
        drop = _NEW_ACTION
    elif "per" in node and "max" in node:
        drop = _NEW_CAP
    elif "type" in node and "item" in node and "values" in node:  # a field
        drop = _NEW_FIELD
    return {k: _unset_new_keys(v) for k, v in node.items() if not (k in drop and v == drop[k])}
