"""Checks on a playbook beyond its schema (SPEC §5).

``checks`` holds :func:`~carepath.lint.checks.lint`, the entry that runs every semantic check on a
compiled playbook, and the threshold, segment and channel-calendar checks; ``graph`` the stage
graph, reachability, the way out, timers, the forgotten customer and the clock analysis;
``signals`` cycles of signal handlers; ``goals`` the goals, read from the model (the compiler runs
them, so another section's error hides none of their findings).
"""
