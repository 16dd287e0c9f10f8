"""``audit_events.ocsf`` against the official OCSF 1.3.0 schema (tests/ocsf_check.py): every
object of every provider, on the emulator's clean and awkward data, meets every constraint;
the classes the tables name are the schema's; values that do not fit go to ``unmapped``."""

from __future__ import annotations

import copy
import typing as t
from collections import Counter

import pytest

from tap_auditlogs.output.ocsf import OCSF_CLASSES, OCSF_VERSION, OTHER_ACTIVITY, ocsf_event
from tap_auditlogs.providers import all_providers
from tests.conftest import run_tap, tap_config
from tests.ocsf_check import VERSION, check_event, event_classes, schema
from tests.unified_cases import STREAM, select

PROVIDERS = {p.key: p for p in all_providers()}


@pytest.mark.parametrize("awkward", [False, True], ids=["clean", "awkward"])
def test_every_object_meets_the_official_schema(emulator, awkward: bool) -> None:
    emu = emulator(seed=11, events_per_org=40, awkward_values=awkward)
    config = tap_config(emu, start_date="2000-01-01T00:00:00Z", unified_ocsf=True)
    run = run_tap(config, catalog=select(config, {STREAM}))
    assert run.exit_code == 0
    records = run.records(STREAM)
    checked: Counter[str] = Counter()
    broken = {}
    for record in records:
        checked[record["provider"]] += 1
        problems = check_event(record["ocsf"])
        if problems:
            broken[(record["provider"], record["event_id"])] = problems
    assert set(checked) == set(PROVIDERS), "every provider's objects are checked"
    assert broken == {}, f"{len(broken)} of {len(records)} objects break OCSF {VERSION}"


def test_the_tables_name_classes_and_activities_of_the_schema() -> None:
    assert OCSF_VERSION == VERSION == schema()["version"]
    classes = event_classes()
    for ocsf in OCSF_CLASSES:
        name, caption, category, category_uid, _ = classes[ocsf.uid]
        assert (ocsf.name, ocsf.category_name, ocsf.category_uid) == (
            caption,
            category,
            category_uid,
        )
        enum = schema()["events"][name]["attributes"]["activity_id"]["enum"]
        for activity_id, activity in ocsf.activities.values():
            assert enum[str(activity_id)]["caption"] == activity, (ocsf.name, activity_id)
    for provider in all_providers():
        assert provider.unified is not None
        for action, row in provider.unified.event_types.items():
            assert row[3] in OCSF_CLASSES, (provider.key, action)


def row(**overrides: object) -> dict[str, t.Any]:
    """A unified record (the fields ``ocsf_event`` reads)."""
    return {
        "provider": "socket",
        "organization_id": "org-1",
        "organization_name": "Acme",
        "event_id": "ev-1",
        "occurred_at": "2026-01-02T03:04:05.123456Z",
        "action": "SomethingHappened",
        "category": "membership",
        "operation": "update",
        "actor_id": "u-1",
        "actor_email": "ada@example.com",
        "actor_name": "Ada",
        "actor_type": "user",
        "target_id": "t-1",
        "target_name": "the target",
        "target_type": "member",
        "source_ip": "192.0.2.1",
        "user_agent": "curl/8",
        "country_code": "US",
        "status_code": 200,
        **overrides,
    }


@pytest.mark.parametrize("ocsf", OCSF_CLASSES, ids=lambda c: f"{c.uid}-{c.activities}")
def test_values_that_do_not_fit_go_to_unmapped_whole(ocsf: t.Any) -> None:
    long_text = "x" * 120_000
    odd = {
        "source_ip": "not-an-ip",
        "actor_email": "frances@acme\x00-corp.example",
        "user_agent": long_text,
        "target_name": long_text,
        "actor_id": long_text,
    }
    event = ocsf_event(row(**odd), "Socket", ocsf)
    assert check_event(event) == []
    assert {key: event["unmapped"][key] for key in odd} == odd, "kept whole"
    assert "src_endpoint" not in event
    assert "email_addr" not in event["actor"]["user"]
    assert event["http_request"]["user_agent"] == long_text[:65_535]
    assert event["actor"]["user"]["uid"] == long_text[:65_535]
    long_ip = "1:2:3:4:5:6:7:8%" + "e" * 40  # an IPv6 address with a long zone: over 40
    event = ocsf_event(row(source_ip=long_ip), "Socket", ocsf)
    assert check_event(event) == []
    assert event["unmapped"]["source_ip"] == long_ip


@pytest.mark.parametrize("ocsf", OCSF_CLASSES, ids=lambda c: f"{c.uid}-{c.activities}")
def test_nothing_named_leaves_optional_objects_out_and_fills_what_is_required(
    ocsf: t.Any,
) -> None:
    nothing = dict.fromkeys(
        [
            "actor_id",
            "actor_email",
            "actor_name",
            "target_id",
            "target_name",
            "target_type",
            "source_ip",
            "user_agent",
            "country_code",
            "status_code",
            "action",
        ]
    )
    event = ocsf_event(row(actor_type="unknown", operation="other", **nothing), "Socket", ocsf)
    assert check_event(event) == []
    assert not {"actor", "src_endpoint", "http_request"} & set(event)
    assert (event["activity_id"], event["activity_name"]) == OTHER_ACTIVITY
    assert event["type_uid"] == ocsf.uid * 100 + 99


def test_an_event_without_an_instant_still_has_a_time() -> None:
    event = ocsf_event(row(occurred_at=None), "Socket")
    assert check_event(event) == []
    assert event["unmapped"]["time_is_processed_time"] is True


def test_the_check_reports_each_kind_of_breach() -> None:
    good = ocsf_event(row(operation="login"), "Socket", OCSF_CLASSES[0])
    assert check_event(good) == []
    breaches: list[tuple[t.Callable[[dict], None], str]] = [
        (lambda e: e.update(src_endpoint={}), "src_endpoint: an empty object"),
        (lambda e: e["actor"]["user"].pop("uid") and e["actor"]["user"].pop("name"), "at_least"),
        (lambda e: e["actor"]["user"].update(email_addr="a@b"), "does not match email_t"),
        (lambda e: e["src_endpoint"].update(ip="1.2.3.4.5"), "does not match ip_t"),
        (lambda e: e["src_endpoint"].update(ip="1:2:3:4:5:6:7:8%" + "e" * 40), "over 40"),
        (lambda e: e["http_request"].update(user_agent="x" * 65_536), "over 65535"),
        (lambda e: e.update(activity_name="Login"), "is not the caption"),
        (lambda e: e.update(severity_id=7), "is not one of"),
        (lambda e: e.update(type_uid=1), "type_uid 1"),
        (lambda e: e.update(type_name="Authentication: Other"), "type_name"),
        (lambda e: e.update(class_uid=6003), "required, missing"),
        (lambda e: e.pop("user"), "user: required, missing"),
        (lambda e: e.update(api={"operation": "x"}), "api: not an attribute here"),
        (lambda e: e["metadata"].update(uid=None), "null"),
        (lambda e: e.update(time="yesterday"), "not an integer"),
    ]
    for breach, expected in breaches:
        event = copy.deepcopy(good)
        breach(event)
        problems = check_event(event)
        assert any(expected in problem for problem in problems), (expected, problems)
