"""A page's request (declaration.py ``build_page_request``): URL and query from
``page_request``, the body from it or from the SDK's ``prepare_request_payload``; the
built-in providers GET with no body, as before."""

from __future__ import annotations

import typing as t

from tap_auditlogs.core.types import PageRequest
from tap_auditlogs.engine.declaration import ProviderDeclaration
from tests.conftest import provider_sources

URL = "https://api.example.invalid/log"


class Paged(ProviderDeclaration):
    """Page numbers in the query, no body (the default)."""

    def page_params(self, token: t.Any) -> dict:
        return {"page": token}


class SdkBody(Paged):
    """A body from the SDK hook, for every page."""

    def prepare_request_payload(self, context: t.Any, next_page_token: t.Any) -> t.Any:
        return {"org": (context or {}).get("org"), "after": next_page_token}


class PairAndBody(SdkBody):
    """An older ``page_request`` that returns a plain (url, query) pair."""

    def page_request(self, url: str, params: dict, token: t.Any) -> tuple[str, dict]:
        return (url, params) if token is None else (f"{url}/next", {})


class OwnBody(SdkBody):
    """A body of its own for the first page (the pass's fields), the hook's after."""

    def page_request(self, url: str, params: dict, token: t.Any) -> PageRequest:
        return PageRequest(url, {}, params if token is None else None)


def test_the_default_is_the_query_plus_the_page_and_no_body() -> None:
    paged = Paged()
    assert paged.build_page_request(None, URL, {"a": 1}, None) == (URL, {"a": 1}, None)
    assert paged.build_page_request(None, URL, {"a": 1}, 2) == (URL, {"a": 1, "page": 2}, None)


def test_the_sdk_hook_gives_the_body_with_context_and_token() -> None:
    request = SdkBody().build_page_request({"org": "acme"}, URL, {}, "t1")
    assert request == PageRequest(URL, {"page": "t1"}, {"org": "acme", "after": "t1"})


def test_a_plain_pair_is_a_request_without_its_own_body() -> None:
    stream = PairAndBody()
    assert stream.build_page_request(None, URL, {"a": 1}, None).query == {"a": 1}
    request = stream.build_page_request(None, URL, {"a": 1}, "t2")
    assert request == PageRequest(f"{URL}/next", {}, {"org": None, "after": "t2"})


def test_a_body_from_page_request_wins_over_the_hook() -> None:
    stream = OwnBody()
    assert stream.build_page_request(None, URL, {"limit": 5}, None).body == {"limit": 5}
    assert stream.build_page_request(None, URL, {"limit": 5}, "c").body == {
        "org": None,
        "after": "c",
    }


def test_every_built_in_provider_gets_without_a_body() -> None:
    """The providers of the package are unchanged: GET, the query only."""
    for name, stream in provider_sources().items():
        assert stream.http_method == "GET", name
        params = stream.request_params(None, None, None)
        assert stream.build_page_request(None, URL, params, None).body is None, name
