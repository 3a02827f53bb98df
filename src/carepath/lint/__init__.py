"""Checks on a compiled playbook beyond its schema: the stage graph, clocks, signals, goals."""
