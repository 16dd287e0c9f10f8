"""What the tap writes: records that fit their schemas, the unified record, messages.

``conform``: every record fits its stream's schema (``undeclared_fields``); ``unified``:
the unified record of ``audit_events`` and its taxonomy (``UnifiedMapping``); ``ocsf``: its
OCSF view; ``writer``: the buffered Singer message writer (never a RECORD behind its STATE).

May import: core. Imported by: engine, providers, streams, cli.
"""
