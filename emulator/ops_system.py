"""Placeholder: supervisor-level instruction handlers (filled in by the core work)."""

SPECS: list = []
