"""The demo: the tap on the embedded emulator, loaded into DuckDB, rows counted.

    make demo            (or: python scripts/demo.py [--events N] [--seed N] [--out DIR])

It starts the provider emulator on 127.0.0.1 (no credentials, no network), runs
``tap-auditlogs | target-duckdb`` into ``output/demo/warehouse.duckdb`` with every stream
selected (the provider tables and the unified ``audit_events``), and prints per stream:
the events the emulator holds, the records the tap emitted, and the distinct rows that
arrived in DuckDB. Loaders can drop rows silently, so the demo fails (exit 1) unless all
three agree, and unless ``audit_events`` holds as many rows as the provider tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tap_auditlogs.providers import all_providers  # noqa: E402
from tap_auditlogs.streams.audit_events import AuditEventsStream  # noqa: E402
from tap_auditlogs.tap import TapAuditLogs  # noqa: E402
from tests.emulator import Emulator, Scenario  # noqa: E402

BIN = Path(sys.executable).parent
SCHEMA = "auditlogs"
UNIFIED = AuditEventsStream.name


def main() -> int:
    """Run the demo; 0 when every count matches."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=250, help="events per organization")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "output" / "demo")
    args = parser.parse_args()

    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    database = out / "warehouse.duckdb"

    scenario = Scenario(seed=args.seed, events_per_org=args.events)
    # Every event the emulator generates is newer than this, so every one must arrive.
    start_date = scenario.now - timedelta(days=scenario.span_days + 1)
    with Emulator(scenario) as emu:
        config = {**emu.tap_config(), "start_date": start_date.isoformat()}
        config_path = out / "tap_config.json"
        config_path.write_text(json.dumps(config, indent=2))
        target_path = out / "target_config.json"
        target_path.write_text(json.dumps({"path": str(database), "default_target_schema": SCHEMA}))
        catalog_path = out / "catalog.json"
        catalog_path.write_text(json.dumps(select_all(config), indent=2))
        print(f"Emulator at {emu.url}; playing: {', '.join(emu.providers)}")
        emitted = run_pipeline(config_path, target_path, out, catalog_path)
        truth = {
            provider.source_class.name: len(emu.truth(provider.key))
            for provider in all_providers()
            if provider.key in emu.providers
        }
        truth[UNIFIED] = sum(truth.values())  # one unified row per provider event

    loaded = count_rows(database, truth)
    print()
    print(f"{'stream':<22} {'emulator':>9} {'emitted':>9} {'in DuckDB':>10}")
    ok = True
    for stream, expected in truth.items():
        row = (expected, emitted.get(stream, 0), loaded.get(stream, 0))
        mark = "" if len(set(row)) == 1 else "   <-- MISMATCH"
        ok = ok and not mark
        print(f"{stream:<22} {row[0]:>9} {row[1]:>9} {row[2]:>10}{mark}")
    provider_rows = sum(count for stream, count in loaded.items() if stream != UNIFIED)
    same = loaded.get(UNIFIED, 0) == provider_rows
    ok = ok and same
    print()
    print(
        f"{UNIFIED} rows in DuckDB: {loaded.get(UNIFIED, 0)}, provider tables together: "
        f"{provider_rows}" + ("" if same else "   <-- MISMATCH")
    )
    print()
    print(f"DuckDB file: {database}")
    print("All counts match." if ok else "Counts differ: see above.")
    return 0 if ok else 1


def select_all(config: dict) -> dict:
    """The tap's catalog with every stream selected (``audit_events`` is opt-in)."""
    catalog = TapAuditLogs(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = True
    return catalog


def run_pipeline(
    config_path: Path, target_path: Path, out: Path, catalog_path: Path
) -> Counter[str]:
    """``tap | target``, counting the RECORD messages that pass through."""
    emitted: Counter[str] = Counter()
    with (out / "tap.log").open("w") as tap_log, (out / "target.log").open("w") as target_log:
        tap = subprocess.Popen(
            [
                str(BIN / "tap-auditlogs"),
                *("--config", str(config_path), "--catalog", str(catalog_path)),
            ],
            stdout=subprocess.PIPE,
            stderr=tap_log,
        )
        target = subprocess.Popen(
            [str(BIN / "target-duckdb"), "--config", str(target_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=target_log,
        )
        assert tap.stdout is not None
        assert target.stdin is not None
        for line in tap.stdout:
            if line.startswith(b'{"type":"RECORD"'):
                emitted[json.loads(line)["stream"]] += 1
            target.stdin.write(line)
        target.stdin.close()
        tap_code, target_code = tap.wait(), target.wait()
    if tap_code or target_code:
        sys.exit(f"tap exited {tap_code}, target exited {target_code}; logs in {out}")
    return emitted


def count_rows(database: Path, streams: dict[str, int]) -> dict[str, int]:
    """Distinct primary keys per stream table in the DuckDB file."""
    keys = {p.source_class.name: p.source_class.primary_keys for p in all_providers()}
    keys[UNIFIED] = AuditEventsStream.primary_keys
    counts = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        for stream in streams:
            columns = ", ".join(f'"{key.lower()}"' for key in keys[stream])
            query = f"SELECT count(DISTINCT ({columns})) FROM {SCHEMA}.{stream}"
            try:
                counts[stream] = connection.execute(query).fetchone()[0]  # type: ignore[index]
            except duckdb.CatalogException:
                counts[stream] = 0
    return counts


if __name__ == "__main__":
    sys.exit(main())
