"""Benchmarks: session_graph beside naive peers, measured in the same run (see README.md)."""
