"""What feeds the engine: the simulator, the replay behind reports, and the event-log generator."""
