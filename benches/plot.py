"""Draw fasterapi's throughput as a multiple of each peer's, per scenario (matplotlib).

Reads {scenario: {peer: ratio}} as JSON on stdin; writes the PNG named on the command line."""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"granian": "#4c72b0", "uvicorn": "#dd8452", "hypercorn": "#55a868", "hyper": "#8c8c8c"}


def main(path: str) -> None:
    ratios: dict[str, dict[str, float]] = json.load(sys.stdin)
    scenarios = list(ratios)
    peers = [p for p in COLOURS if any(p in r for r in ratios.values())]
    width = 0.8 / max(1, len(peers))
    fig, ax = plt.subplots(figsize=(12, 5.5))
    for i, peer in enumerate(peers):
        xs = [k + (i - (len(peers) - 1) / 2) * width for k in range(len(scenarios))]
        ys = [ratios[s].get(peer, 0) for s in scenarios]
        bars = ax.bar(xs, ys, width, label=f"vs {peer}", color=COLOURS[peer])
        for bar, y in zip(bars, ys, strict=True):
            if y:
                ax.annotate(
                    f"{y:.1f}", (bar.get_x() + bar.get_width() / 2, y), ha="center", va="bottom", fontsize=7
                )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(scenarios)), scenarios, rotation=30, ha="right")
    ax.set_ylabel("fasterapi req/s ÷ peer req/s (log scale; > 1 = fasterapi faster)")
    ax.set_title("fasterapi throughput relative to each peer, same machine, same run")
    if peers:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1])
