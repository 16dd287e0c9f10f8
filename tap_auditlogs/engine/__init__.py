"""The read engine: how a provider's audit log is read, never losing an event.

``source``: ``AuditLogSource``, the provider object (with ``declaration``: what a provider
declares); ``page_loop``: one request after another, loops caught; ``organizations``:
partitions; ``strategies``, ``newest_first``, ``verified``, ``windows``: the ways to read a
log, with ``state``, ``totals``, ``clock`` and ``values`` (what may be odd in a record);
``partition_reader``: one partition as a strategy sees it; ``read_ahead``, ``page_chains``
and ``handover``: partitions and page chains read side by side, handed over in order.
Nothing here knows the singer-sdk stream.

May import: output, http, core. Imported by: providers, streams, cli.
"""
