"""singer-sdk's standard tap tests (discovery, schema, records, keys) against the emulator."""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import tap_config
from tests.emulator import Emulator, Scenario

# The standard suite needs its config when the class is built, so this module starts its
# own emulator at import and stops it when the test process exits.
_EMULATOR = Emulator(Scenario(seed=5, socket_orgs=("acme", "globex"), events_per_org=80)).start()
atexit.register(_EMULATOR.stop)

_CONFIG = tap_config(_EMULATOR)


def _select_all(config: dict) -> dict:
    """The discovered catalog with every stream selected (``audit_events`` is opt-in)."""
    catalog = TapAuditLogs(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = True
    return catalog


TestTapAuditLogs = get_tap_test_class(
    tap_class=TapAuditLogs,
    config=_CONFIG,
    suite_config=SuiteConfig(max_records_limit=150),
    catalog=_select_all(_CONFIG),
)
