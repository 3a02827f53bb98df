"""The example event logs (``carepath.examples.events``)."""
