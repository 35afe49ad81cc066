"""The caller-stalls measurement (`test_caller_stalls.py`) as a script, for comparing configurations in
one sitting: 5 rounds of the floor loop then the capture loop, printed as medians with each round.

    python benchmarks/caller_stall_variants.py                      # the default configuration
    CONTEXTA_CAPTURE_QUEUE_CAPACITY=262144 python benchmarks/caller_stall_variants.py
    python benchmarks/caller_stall_variants.py --switch-interval 0.001

Figures only; see docs/benchmarks.md ("where the worst calls come from now").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from test_caller_stalls import CALLS, _capture, _floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for this process")
    options = parser.parse_args()
    if options.switch_interval:
        sys.setswitchinterval(options.switch_interval)
    rounds = []
    with tempfile.TemporaryDirectory() as directory:
        for number in range(options.rounds):
            floor = _floor(CALLS)
            capture = _capture(Path(directory) / f"round-{number}", CALLS)
            rounds.append(
                {
                    "mean_vs_floor": round(capture["mean_ns"] / floor["mean_ns"], 2),
                    "worst_minus_floor_worst_ms": round((capture["max_ns"] - floor["max_ns"]) / 1e6, 2),
                    "blocked_calls": int(capture["blocked_calls"]),
                }
            )
    summary = {
        name: statistics.median(row[name] for row in rounds)
        for name in ("mean_vs_floor", "worst_minus_floor_worst_ms")
    }
    print(json.dumps({"median": summary, "rounds": rounds}))


if __name__ == "__main__":
    main()
