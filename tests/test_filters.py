"""Event-type filters take the documented values, exactly, for every provider that has one.

A configured type is matched ignoring case and sent in the documented spelling (Socket's
``SSOLoginCompleted``, not ``SsoLoginCompleted``); an unknown one is refused before any
request, in one line with a "did you mean". Every documented value is tried: one by one
against the settings check, and all at once through the emulator (which accepts exactly
the documented spellings, and serves the events of the type asked for).
"""

from __future__ import annotations

import pytest

from tap_auditlogs.cli.settings import validate_settings
from tap_auditlogs.core.errors import EXIT_CONFIG, ConfigError
from tap_auditlogs.engine.declaration import documented_spelling
from tap_auditlogs.providers import all_providers
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import run_tap, run_tap_cli, tap_config
from tests.emulator.registry import available_providers
from tests.unified_cases import mapping_of

#: Providers whose ``event_types`` filter has a documented enum.
FILTERED = {p.key: p for p in all_providers() if p.source_class.event_type_values}
#: (provider, documented value) for every value of every such provider.
VALUES = [(key, value) for key, p in FILTERED.items() for value in p.source_class.event_type_values]


def spellings(value: str) -> list[str]:
    """What a user may write for ``value``: PascalCase, lowerCamel, any case."""
    return [
        value,
        value[:1].upper() + value[1:],
        value[:1].lower() + value[1:],
        value.lower(),
        value.upper(),
        value.swapcase(),
        f" {value} ",
    ]


def test_some_providers_have_a_documented_filter() -> None:
    assert FILTERED, "no provider declares event_type_values"


@pytest.mark.parametrize(("provider", "value"), VALUES, ids=[f"{p}-{v}" for p, v in VALUES])
def test_every_documented_value_is_taken_in_any_case_and_sent_as_documented(
    provider: str, value: str
) -> None:
    stream = FILTERED[provider].source_class
    for written in spellings(value):
        assert documented_spelling(written.strip(), stream.event_type_values) == value, written
    block = {"event_types": spellings(value)}
    assert [p for p in validate_settings({provider: block}) if "event_types" in p] == []


@pytest.mark.parametrize("provider", sorted(FILTERED))
def test_an_unknown_type_is_refused_with_a_did_you_mean(emulator, provider: str) -> None:
    documented = FILTERED[provider].source_class.event_type_values
    target = max(documented, key=len)
    typo = target[:-1].lower()  # one letter short, wrong case
    emu = emulator(providers=(provider,), seed=5, events_per_org=3)
    config = tap_config(emu, **{provider: {"event_types": [documented[0], typo]}})
    with pytest.raises(ConfigError) as raised:
        TapAuditLogs(config=config)
    message = str(raised.value)
    assert "\n" not in message
    assert f"`{provider}.event_types`" in message
    assert FILTERED[provider].label in message
    assert repr(typo) in message
    assert f"did you mean `{target}`?" in message
    run = run_tap_cli(config)
    assert run.exit_code == EXIT_CONFIG
    assert emu.requests(provider) == [], "refused before any request"
    lines = [line for line in run.stderr.splitlines() if "event_types" in line]
    assert len(lines) == 1, run.stderr[-2000:]
    assert f"did you mean `{target}`?" in lines[0]


@pytest.mark.parametrize("provider", sorted(FILTERED))
def test_every_documented_type_filters_through_the_emulator(emulator, provider: str) -> None:
    """Every documented type configured in some case, but one: one request series per type,
    each in the documented spelling, and exactly the events of the types asked for."""
    documented = FILTERED[provider].source_class.event_type_values
    switches = dict(available_providers()[provider].one_org)
    emu = emulator(
        providers=(provider,),
        seed=11,
        events_per_org=len(documented) + 7,
        **switches,
        **{f"{provider}_types": "cycle"},
    )
    left_out = documented[len(documented) // 2]
    asked = [v for v in documented if v != left_out]
    written = [spellings(v)[i % 6] for i, v in enumerate(asked)]
    start = min(emu.truth(provider), key=lambda ev: ev.at).ts
    run = run_tap(tap_config(emu, start_date=start, **{provider: {"event_types": written}}))
    assert run.exit_code == 0

    action = mapping_of(provider).action
    type_of = {
        ev.id: documented_spelling(str(action(ev.item)), documented) for ev in emu.truth(provider)
    }
    assert set(type_of.values()) == set(documented), "the emulator serves every documented type"
    stream = FILTERED[provider].source_class
    emitted = {str(record[stream.primary_keys[-1]]) for record in run.records(stream.name)}
    assert emitted == {i for i, kind in type_of.items() if kind != left_out}
    field = emu.provider(provider).type_parameter
    sent = {
        r.query.get(field) for r in emu.requests(provider) if r.status == 200 and field in r.query
    }
    assert sent == set(asked), "every type sent, in the documented spelling"
    assert all(r.status != 400 for r in emu.requests(provider))
