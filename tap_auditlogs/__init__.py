"""tap-auditlogs: a Singer tap for SaaS audit logs."""
