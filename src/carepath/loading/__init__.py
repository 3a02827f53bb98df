"""Reading playbooks: the positioned YAML loader, the source reporter, ``load``/``loads``/``check``."""

from carepath.loading.loader import CheckResult, check, check_file, load, loads

__all__ = ["CheckResult", "check", "check_file", "load", "loads"]
