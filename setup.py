"""Packages beyond ``src/``: the example playbooks and the JSON Schema ship inside the package as
``carepath.examples`` and ``carepath.schemas`` (package data), read from the repository's own
``examples/`` and ``schemas/`` folders, so there is one copy of each file. Everything else is in
``pyproject.toml``."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages("src", include=["carepath", "carepath.*"]),
        "carepath.examples",
        "carepath.examples.events",
        "carepath.examples.rosters",
        "carepath.schemas",
    ],
    package_dir={"": "src", "carepath.examples": "examples", "carepath.schemas": "schemas"},
)
