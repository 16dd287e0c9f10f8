"""The one retry policy (http/client.py), driven by ``backoff``: waits, Retry-After, giving up.

Every API request and Torq's token request go through ``call_with_retries``; the
end-to-end behaviour (faults, quota stops, resumes) is tested with the emulator elsewhere.
"""

from __future__ import annotations

import logging
import math

import pytest

from tap_auditlogs.core.errors import TransientError
from tap_auditlogs.http.retry import (
    RetriesExhaustedError,
    RetryPolicy,
    call_with_retries,
    retry_waits,
)


def waits(policy: RetryPolicy, problems: list[TransientError]) -> list[float]:
    generator = retry_waits(policy)
    next(generator)
    return [generator.send(problem) for problem in problems]


def test_backoff_doubles_with_half_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(tries=9, base_wait_s=1.0, cap_s=60.0)
    got = waits(policy, [TransientError("HTTP 503")] * 8)
    ceilings = [1, 2, 4, 8, 16, 32, 60, 60]
    for wait, ceiling in zip(got, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_retry_after_is_waited_exactly_and_clipped_only_when_asked() -> None:
    asked = TransientError("HTTP 429", retry_after=42.0)
    assert waits(RetryPolicy(tries=3, base_wait_s=1.0), [asked]) == [42.0]
    token = RetryPolicy(tries=3, base_wait_s=1.0, cap_s=math.inf, clip_s=10.0)
    assert waits(token, [asked]) == [10.0]


def test_retries_then_gives_up_with_the_number_of_tries() -> None:
    calls: list[int] = []
    retried: list[tuple[str, int]] = []

    def failing() -> None:
        calls.append(1)
        raise TransientError(f"HTTP 500 (call {len(calls)})")

    policy = RetryPolicy(tries=4, base_wait_s=0.001)
    with pytest.raises(RetriesExhaustedError) as gave_up:
        call_with_retries(failing, policy, lambda p, w, n: retried.append((str(p), n)))
    assert len(calls) == 4
    assert gave_up.value.tries == 4
    assert str(gave_up.value.problem) == "HTTP 500 (call 4)"
    assert [n for _, n in retried] == [2, 3, 4], "each retry names the attempt it starts"


def test_a_retry_after_longer_than_allowed_gives_up_at_once() -> None:
    calls: list[int] = []

    def quota() -> None:
        calls.append(1)
        raise TransientError("HTTP 429", retry_after=3600.0)

    policy = RetryPolicy(tries=9, base_wait_s=0.001, max_retry_after_s=300.0)
    with pytest.raises(RetriesExhaustedError) as gave_up:
        call_with_retries(quota, policy, lambda *_: None)
    assert len(calls) == 1
    assert policy.gives_up_on(gave_up.value.problem)


def test_success_after_failures_and_other_errors_pass_through() -> None:
    answers = iter([TransientError("drop"), TransientError("drop"), "page"])

    def flaky() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert call_with_retries(flaky, RetryPolicy(tries=3, base_wait_s=0.001), lambda *_: None) == (
        "page"
    )

    def broken() -> None:
        raise KeyError("a bug is not retried")

    with pytest.raises(KeyError):
        call_with_retries(broken, RetryPolicy(tries=3, base_wait_s=0.001), lambda *_: None)


def test_backoff_logs_nothing_of_its_own(caplog: pytest.LogCaptureFixture) -> None:
    """Each retry is the caller's one line (``on_retry``); ``backoff`` says neither
    "Backing off" nor "Giving up"."""
    caplog.set_level(logging.DEBUG)
    retried: list[int] = []

    def failing() -> None:
        raise TransientError("HTTP 503")

    with pytest.raises(RetriesExhaustedError):
        call_with_retries(
            failing, RetryPolicy(tries=3, base_wait_s=0.001), lambda *a: retried.append(a[2])
        )
    assert retried == [2, 3]
    assert caplog.records == []
