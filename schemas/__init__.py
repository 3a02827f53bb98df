"""The playbook JSON Schema, shipped inside the package as ``carepath.schemas``."""
