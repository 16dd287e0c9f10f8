"""A provider that lives only in the tests, registered the way a separate package would be.

It proves the provider contract: ``example_log.py`` (the provider, tap side) and
``example_audit_log.json`` (its schema) are all a new provider needs; ``emulator.py`` plays
its API. Its API pages the way none of the four built-in ones do (Okta's System Log style):
a ``Link: <full URL>; rel="next"`` header, an empty last page that links to itself (the
URL to poll next), and 429 answers that carry only ``X-Rate-Limit-Reset`` (epoch seconds).
The tests register it through the ``tap_auditlogs.providers`` entry-point group.
"""
