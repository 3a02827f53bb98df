"""The example playbooks, their scenario tests and event logs, shipped inside the package as
``carepath.examples`` (``carepath init --example NAME DIR`` copies one out)."""
