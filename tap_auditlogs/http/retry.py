"""One retry policy for every request the tap sends, driven by ``backoff``.

Exponential waits with jitter over the upper half of each ceiling (at most 60 s), or what the
answer asks (``Retry-After``, or a provider's own header) but never less than the lower half of
that ceiling (``Retry-After: 0`` is not a reason to retry at once); a wait asked for that is
longer than ``max_retry_wait`` gives up at once, so the caller can stop cleanly. API requests
(http/client.py) and Torq's token requests use it, each with its own limits.
"""

from __future__ import annotations

import dataclasses
import random
import typing as t

import backoff

from tap_auditlogs.core.errors import TransientError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    tries: int  # attempts in all, the first included
    base_wait_s: float  # first backoff wait: doubled each time, half jitter
    cap_s: float = 60.0  # longest backoff wait
    #: A longer Retry-After stops the provider (``QuotaExhaustedError``); None: any
    #: Retry-After is waited out, at most ``clip_s``.
    max_retry_after_s: float | None = None
    clip_s: float | None = None  # longest wait of any kind (None: no limit)

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> RetryPolicy:
        """The policy of API requests: ``max_retries``, ``backoff_base_seconds``,
        ``max_retry_wait``."""
        return cls(
            tries=1 + int(config["max_retries"]),
            base_wait_s=float(config["backoff_base_seconds"]),
            max_retry_after_s=float(config["max_retry_wait"]),
        )

    def gives_up_on(self, problem: TransientError) -> bool:
        """True when the API asks to wait longer than the policy waits."""
        limit = self.max_retry_after_s
        return limit is not None and problem.retry_after is not None and problem.retry_after > limit


def retry_waits(policy: RetryPolicy) -> Generator[float, TransientError, None]:
    """``backoff`` wait generator: what ``Retry-After`` asks, else exponential backoff.

    ``backoff`` sends each failure in, so the wait can follow the answer's own header.
    Jitter is ours (uniform over the upper half of the ceiling), so ``jitter=None``.
    """
    attempt = 0
    problem = yield 0.0  # priming: backoff starts the generator with send(None)
    while True:
        attempt += 1
        ceiling = min(policy.cap_s, policy.base_wait_s * 2 ** (attempt - 1))
        if problem.retry_after is not None:
            # Never less than the least this attempt's backoff waits: ``Retry-After: 0``
            # again and again would spend every retry within a second.
            wait = max(problem.retry_after, ceiling / 2)
        else:
            wait = random.uniform(ceiling / 2, ceiling)
        if policy.clip_s is not None:
            wait = min(wait, policy.clip_s)
        problem = yield wait


class RetriesExhaustedError(Exception):
    """``call_with_retries`` gave up: ``problem`` is the last failure, after ``tries``."""

    def __init__(self, problem: TransientError, tries: int) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.tries = tries


T = t.TypeVar("T")


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    on_retry: Callable[[TransientError, float, int], None],
) -> T:
    """``call()`` until it returns, retrying its ``TransientError``s by ``policy``.

    ``on_retry(problem, wait, next_attempt)`` runs before each wait (``backoff`` itself logs
    nothing: one line per retry). When the policy gives up, ``RetriesExhaustedError`` says
    why and after how many tries. Anything else ``call`` raises goes through at once.
    """

    def log(details: t.Any) -> None:
        on_retry(details["exception"], details["wait"], details["tries"] + 1)

    tries = 0

    def counted() -> T:
        nonlocal tries
        tries += 1
        return call()

    retrying = backoff.on_exception(
        retry_waits,
        TransientError,
        max_tries=policy.tries,
        jitter=None,
        giveup=policy.gives_up_on,  # type: ignore[arg-type]
        on_backoff=log,
        logger=None,  # ``on_retry`` logs each retry once, the caller words giving up
        policy=policy,
    )(counted)
    try:
        return retrying()
    except TransientError as problem:
        raise RetriesExhaustedError(problem, tries) from None
