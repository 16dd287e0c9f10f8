"""The singer-sdk streams: thin glue between the SDK and the read engine.

``audit_log``: ``AuditLogStream``, one per provider, made from its source class (state,
records, failures; reading is the engine's); ``audit_events``: the unified stream fed by
them; ``sync_coverage``: the coverage stream; ``coverage``: what each run proves it read;
``bookmarks``: saved state as the SDK holds it; ``sdk``: the few private singer-sdk names
the tap uses (each tested).

May import: providers, engine, output, http, core. Imported by: cli, ``tap_auditlogs.tap``.
"""
