"""The condition language (SPEC §2.3): types, the compiler to a sandboxed program, runtime helpers."""
