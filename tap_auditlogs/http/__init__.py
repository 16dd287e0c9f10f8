"""HTTP: one client for every provider, its retry policy, and the words for bad answers.

``client``: ``ApiClient`` (every request: retries, ``Retry-After``, no redirects, errors
without secrets, rate limit, request slots); ``retry``: the retry policy, on ``backoff``;
``body``: a body read within its deadline; ``responses``: the decoded answer and what was
wrong with it; ``ratelimit``: a provider's documented rate limit, kept across threads.

May import: core. Imported by: engine, providers and the layers above.
"""
