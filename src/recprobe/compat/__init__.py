"""Shims that let older third-party packages run on today's numpy / torch / scipy, each kept in one place."""
