"""`python -m tests.emulator --port 8765 --seed 1 [--events N] [--write-config path]`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .core import Emulator
from .scenario import Scenario


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8765, help="0: any free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=int, default=None, help="events per org")
    parser.add_argument("--write-config", type=Path, default=None, help="write tap config JSON")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Scenario field or switch, VALUE as JSON or text (e.g. socket_order=asc)",
    )
    args = parser.parse_args(argv)
    options: dict[str, Any] = {"seed": args.seed}
    if args.events is not None:
        options["events_per_org"] = args.events
    for item in args.set:
        key, _, text = item.partition("=")
        options[key] = _value(text)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Emulator(Scenario(**options), port=args.port) as emu:
        if args.write_config is not None:
            args.write_config.write_text(json.dumps(emu.tap_config(), indent=2) + "\n")
        print(emu.url, flush=True)
        for name in emu.providers:
            print(f"  {name}: {emu.base_url(name)}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
