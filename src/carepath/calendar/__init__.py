"""Business time (SPEC §3): calendars of open hours and holidays, and cron schedules.

``business`` holds :class:`Calendar` (add, elapsed, is open); ``spec`` reads a playbook's calendar
entry; ``table`` expands it to weekly open intervals; ``holidays`` resolves country holidays;
``schedule`` evaluates cron schedules in business time."""

from carepath.calendar.business import Calendar

__all__ = ["Calendar"]
