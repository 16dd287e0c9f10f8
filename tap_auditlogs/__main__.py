"""Run the tap with ``python -m tap_auditlogs``."""

from tap_auditlogs.tap import main

main()
