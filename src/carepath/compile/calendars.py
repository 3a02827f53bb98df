"""The calendars of a playbook, checked and built (SPEC §2.2); ``always`` is built in.

A calendar may say ``timezone: customer`` (SPEC §10): it is built here in the playbook's zone, and
:func:`customer_calendars` keeps its mapping so that the engine builds it again in the zone the
case field ``customer_timezone`` names (:func:`check_customer_timezone` checks that field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from carepath.errors import CalendarError

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar
    from carepath.expr.types import FieldType
    from carepath.loading.source import Reporter
    from carepath.model import PlaybookSpec

__all__ = ["CUSTOMER", "check_customer_timezone", "compile_calendars", "customer_calendars"]

CUSTOMER = "customer"
"""``timezone: customer``: the calendar's hours are read in the customer's zone."""


def _raw(spec: PlaybookSpec, name: str) -> dict[str, Any]:
    """The mapping calendar ``name`` is built from (``timezone: customer`` read as the playbook's)."""
    raw = spec.calendars[name].model_dump(by_alias=True, exclude_none=True)
    raw.pop("title", None)
    raw["holidays"] = [h["date"] if set(h) == {"date"} else h for h in raw.get("holidays", [])]
    if raw.get("timezone") == CUSTOMER:
        raw["timezone"] = spec.timezone
    return raw


def customer_calendars(spec: PlaybookSpec) -> dict[str, Mapping[str, Any]]:
    """The calendars declared ``timezone: customer``, by name, as the mappings they are built from."""
    return {n: _raw(spec, n) for n, c in spec.calendars.items() if c.timezone == CUSTOMER}


def check_customer_timezone(
    spec: PlaybookSpec,
    fields: Mapping[str, FieldType],
    rep: Reporter,
    hint: Callable[[str, list[str]], str | None],
) -> str | None:
    """``customer_timezone``: a declared string field, required by ``timezone: customer``."""
    name = spec.customer_timezone
    if name is None:
        for n, c in spec.calendars.items():
            if c.timezone == CUSTOMER:
                rep.add(
                    "CP202",
                    f"calendar {n!r} reads the customer's time zone, but the playbook names no "
                    "`customer_timezone` field",
                    ("calendars", n, "timezone"),
                    hint="add `customer_timezone: customer.timezone` and declare that string field",
                )
        return None
    ft = fields.get(name)
    if ft is None:
        rep.add(
            "CP402",
            f"`customer_timezone` names undeclared field {name!r}",
            ("customer_timezone",),
            hint=hint(name, list(fields)) or f"declare it: `{name}: string`",
        )
    elif ft.kind != "string":
        rep.add(
            "CP203",
            f"`customer_timezone` names field {name!r} of type {ft}; it must be a string "
            "(an IANA time zone name such as Asia/Ho_Chi_Minh)",
            ("customer_timezone",),
        )
    return name


def compile_calendars(spec: PlaybookSpec, rep: Reporter) -> dict[str, Calendar]:
    """The playbook's calendars, built (``always`` included); problems go to ``rep``."""
    from carepath.calendar.business import Calendar

    tz = spec.timezone
    out: dict[str, Calendar] = {}
    try:
        out["always"] = Calendar.from_dict("always", timezone=tz)
    except (CalendarError, ValueError) as exc:
        rep.add(
            "CP203",
            f"invalid timezone {tz!r}: {exc}",
            ("timezone",),
            hint="use an IANA name such as Asia/Ho_Chi_Minh or Europe/Berlin",
        )
        return out
    for name in spec.calendars:
        raw = _raw(spec, name)
        if name == "always":
            rep.add(
                "CP203",
                "`always` is built in and cannot be redefined",
                ("calendars", name),
                key=True,
            )
            continue
        problems = Calendar.validate_dict(raw, timezone=tz)
        for rel, msg, code in problems:
            rep.add(code, msg, ("calendars", name, *rel))
        if problems:
            continue
        try:
            out[name] = Calendar.from_dict(raw, timezone=tz)
        except CalendarError as exc:
            for rel, msg in exc.problems:
                rep.add("CP512", msg, ("calendars", name, *rel))
    return out
