"""The command line and the settings: what the user types and configures.

``command``: ``CommandLineTap`` (the CLI: ``--test``, one-line errors, exit codes, signals);
``settings``: the settings schema (common settings and every provider's block) and its
checks; ``environment``: settings from ``TAP_AUDITLOGS_*`` variables and ``.env``;
``connection_check``: ``--test``, one cheap call per provider and organization.

May import: streams, providers, engine, output, http, core. Imported by: ``tap_auditlogs.tap``.
"""
