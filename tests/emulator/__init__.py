"""HTTP emulator of the providers' audit-log APIs, for testing tap-auditlogs.

Start one with ``with Emulator(Scenario(seed=1, socket_order="asc")) as emu:``, run the tap with
``emu.tap_config()``, then compare what it emitted with ``emu.truth("socket")`` and look at
``emu.requests()``.  ``core.py`` holds the API; ``socketdev.py`` shows a provider module.
"""

from .core import Emulator, RequestRecord
from .faults import FAULT_KINDS, FaultKind, FaultRule
from .provider import ApiRequest, Provider, QuotaStatus, Response, Route, TruthEvent
from .registry import (
    available_providers,
    documented_rate_limits,
    register_provider,
    unregister_provider,
)
from .scenario import QuotaRule, Scenario, Switch
from .socketdev import TOKEN as SOCKET_TOKEN

__all__ = [
    "FAULT_KINDS",
    "SOCKET_TOKEN",
    "ApiRequest",
    "Emulator",
    "FaultKind",
    "FaultRule",
    "Provider",
    "QuotaRule",
    "QuotaStatus",
    "RequestRecord",
    "Response",
    "Route",
    "Scenario",
    "Switch",
    "TruthEvent",
    "available_providers",
    "documented_rate_limits",
    "register_provider",
    "unregister_provider",
]
