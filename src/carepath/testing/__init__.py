"""Helpers for a CRM's own test-suite: a fake clock, a case driver, the scenario runner."""

from carepath.testing.harness import CaseDriver, FakeClock, run_scenario

__all__ = ["CaseDriver", "FakeClock", "run_scenario"]
