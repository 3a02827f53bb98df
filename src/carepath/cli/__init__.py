"""The ``carepath`` command: ``main`` dispatches to one module per command."""

from carepath.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
