"""The benchmark's PNG chart (matplotlib is optional: without it the chart is skipped).

``run.py`` draws it after a run. To draw it later from a results file, with any Python
that has matplotlib (nothing else is needed)::

    python benchmarks/chart.py benchmarks/results/latest.json [out.png]

Installing matplotlib into the tap's own environment pulls in numpy, which joblib (an
SDK dependency) then imports at every tap start-up (about +0.15 s); keep it elsewhere
when the start-up cost matters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BASELINE = "baseline"


def draw_chart(summary: dict[str, Any], path: Path) -> Path | None:
    """A small PNG of the mode's headline figures; skipped with a message without matplotlib."""
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        print("chart:   skipped: matplotlib is not installed (pip install matplotlib for a PNG)")
        return None
    programs = [*summary["programs"], BASELINE]
    if summary["mode"] == "parallel":
        fig = _parallel(summary, plt)
    elif summary["mode"] == "scale":
        fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4), dpi=100)
        for name, stream in summary["streams"].items():
            sizes = sorted(stream["sizes"], key=int)
            counts = [int(n) for n in sizes]
            for program in programs:
                style = "s--" if program == BASELINE else "o-"
                label = f"{name.removesuffix('_audit_log')} {program}"
                net = [stream["sizes"][n]["programs"][program]["net_s"] for n in sizes]
                rss = [stream["sizes"][n]["programs"][program]["peak_rss_mb"] for n in sizes]
                left.plot(counts, net, style, label=label)
                right.plot(counts, rss, style, label=label)
        left.set(xlabel="events", ylabel="net wall s (wall - emulator)", title="time")
        right.set(xlabel="events", ylabel="peak RSS MB", title="memory")
        right.set_ylim(bottom=0)
        left.legend(fontsize=7)
    else:
        names = list(summary["streams"])
        fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
        width = 0.8 / len(programs)
        latency = summary["mode"] == "latency"
        for index, program in enumerate(programs):
            xs = [i - 0.4 + width * (index + 0.5) for i in range(len(names))]
            if latency:
                ys = [summary["streams"][n]["vs_bound"][program]["median"] for n in names]
            else:
                ys = [
                    summary["streams"][n]["programs"][program]["net_records_per_s"] for n in names
                ]
            bars = ax.bar(xs, ys, width, label=program)
            if not latency and program != BASELINE:
                labels = [
                    f"{summary['streams'][n]['ratios'][program]['net']['median']:.2f}x"
                    for n in names
                ]
                ax.bar_label(bars, labels, fontsize=7)
        if latency:
            ax.axhline(1.0, color="grey", lw=0.8)
            ax.set(
                ylabel="wall / (requests x delay)",
                title=f"{summary['latency_ms']:g} ms per response: wall / sequential bound",
            )
        else:
            ax.set(
                ylabel="records/s, net of emulator time",
                title=f"{summary['events']:,} events per stream; labels: time / baseline",
            )
        ax.set_xticks(range(len(names)), [n.removesuffix("_audit_log") for n in names])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _parallel(summary: dict[str, Any], plt: Any) -> Any:
    """Parallel mode: wall / sequential bound per concurrency, the target as a line."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=100)
    results = summary["results"]
    levels = [str(n) for n in summary["concurrency"]]
    width = 0.8 / len(results)
    for index, (program, entry) in enumerate(results.items()):
        xs = [i - 0.4 + width * (index + 0.5) for i in range(len(levels))]
        ys = [(entry[n]["vs_bound"] or {}).get("median", float("nan")) for n in levels]
        bars = ax.bar(xs, ys, width, label=program)
        ax.bar_label(bars, [f"{entry[n]['wall_s']['median']:.1f} s" for n in levels], fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(
        summary["target"], color="red", lw=0.8, ls="--", label=f"target {summary['target']}x"
    )
    ax.set_xticks(range(len(levels)), levels)
    ax.set(
        xlabel="concurrency",
        ylabel="wall / (requests x delay)",
        title=f"{summary['latency_ms']:g} ms per response, every provider: labels wall s",
    )
    ax.legend(fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> int:
    """``chart.py results.json [out.png]``."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__)
        return 2
    source = Path(args[0])
    target = Path(args[1]) if len(args) > 1 else source.with_suffix(".png")
    summary = json.loads(source.read_text())["summary"]
    drawn = draw_chart(summary, target)
    if drawn is not None:
        print(f"chart: {drawn}")
    return 0 if drawn is not None else 1


if __name__ == "__main__":
    sys.exit(main())
