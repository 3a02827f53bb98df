"""``calendars``: the structure of weekly hours, holidays and overrides (business time lives in
:mod:`carepath.calendar.business`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from carepath.model.common import Model, Shorthand

__all__ = ["CalendarSpec", "HolidaySpec"]


class HolidaySpec(Model):
    """A holiday entry: one date, an inclusive range, or a country's public holidays."""

    date: dt.date | None = Field(None, description="one local date")
    from_: dt.date | None = Field(
        None, alias="from", description="first date of an inclusive range"
    )
    to: dt.date | None = Field(None, description="last date of an inclusive range")
    name: str | None = None
    country: str | None = Field(
        None, description="ISO country code for the `holidays` package (VN, US…)"
    )
    subdiv: str | None = Field(None, description="subdivision (state, province) of `country`")
    except_: list[dt.date] | None = Field(
        None, alias="except", description="dates to remove from `country`"
    )
    remove: dt.date | None = Field(
        None, description="remove this date from the holidays listed so far"
    )


def _holiday(value: Any) -> Any:
    if isinstance(value, str | dt.date):
        return {"date": value}
    return value


HolidayEntry = Annotated[
    HolidaySpec, BeforeValidator(_holiday), Shorthand({"type": "string", "format": "date"})
]


class CalendarSpec(Model):
    """When time counts: weekly hours, holidays, date overrides, a timezone."""

    timezone: str | None = Field(
        None,
        description="IANA timezone, or `customer` (the zone the case field `customer_timezone` "
        "names); default: the playbook's",
    )
    hours: dict[str, list[str]] = Field(
        default_factory=dict,
        description='day keys (mon..sun, mon-fri, sat,sun) → ["08:00-12:00", …]',
    )
    holidays: list[HolidayEntry] = Field(default_factory=list)
    overrides: dict[str, list[str]] = Field(
        default_factory=dict, description="date → hours that replace the weekly hours ([] = closed)"
    )
    title: str | None = None
