"""The stage graph as a diagram (Mermaid, DOT) and as a ``transitions`` machine."""
