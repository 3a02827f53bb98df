"""Goal targets: re-exported from :mod:`carepath.targets`, the one place they are read."""

from ..targets import (
    BUILTIN,
    KIND,
    TIME_METRIC_CLOCK,
    Target,
    TargetError,
    parse_target,
    parse_value,
)

__all__ = ["BUILTIN", "KIND", "TIME_METRIC_CLOCK", "Target", "TargetError", "parse_target", "parse_value"]
