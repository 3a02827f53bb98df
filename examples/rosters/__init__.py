"""Agent rosters of the examples (SPEC §10): ``carepath run … --roster rosters/NAME.yaml``."""
