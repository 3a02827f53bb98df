"""The calendars of a playbook, checked and built (SPEC §2.2); ``always`` is built in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carepath.errors import CalendarError

if TYPE_CHECKING:
    from carepath.calendar.business import Calendar
    from carepath.loading.source import Reporter
    from carepath.model import PlaybookSpec

__all__ = ["compile_calendars"]


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
    for name, cal in spec.calendars.items():
        raw = cal.model_dump(by_alias=True, exclude_none=True)
        raw.pop("title", None)
        raw["holidays"] = [h["date"] if set(h) == {"date"} else h for h in raw.get("holidays", [])]
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
