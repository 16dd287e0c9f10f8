"""A second provider that lives only in the tests, registered as a separate package would be.

Where ``tests/example_provider/`` pages by ``Link`` header, this one POSTs (1Password Events
API style): ``example_events.py`` (the provider, tap side) and ``example_events.json`` (its
schema) are all it needs; ``emulator.py`` plays its API. The first request's JSON body
holds the page size and the start time; each answer holds ``items`` (oldest first), a
``cursor`` and ``has_more``; every later request's body is ``{"cursor": ...}`` alone. The
tests register it through the ``tap_auditlogs.providers`` entry-point group.
"""
