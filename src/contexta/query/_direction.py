"""Which way a metric improves, guessed from its key: losses, errors, latencies, times and perplexity
go down, everything else (accuracy, f1, reward, throughput) goes up. `contexta best` and
`find_best_run` use it when not told, and say that they guessed."""

from __future__ import annotations

import re

__all__ = ["LOWER_IS_BETTER_WORDS", "infer_higher_is_better"]

# A key whose words include one of these is better when lower (`val_loss`, `latency.ms`, `wer`).
LOWER_IS_BETTER_WORDS = frozenset(
    (
        "loss",
        "losses",
        "error",
        "errors",
        "err",
        "latency",
        "time",
        "duration",
        "seconds",
        "perplexity",
        "ppl",
        "mse",
        "mae",
        "rmse",
        "wer",
        "cer",
        "cost",
        "regret",
        "distance",
        "memory",
    )
)
_WORD = re.compile(r"[a-z]+")


def infer_higher_is_better(metric_key: str) -> bool:
    """False when a word of `metric_key` (split at anything but letters, and at lower-to-upper case
    changes) names something better when lower; True otherwise."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", metric_key).lower()
    return not any(word in LOWER_IS_BETTER_WORDS for word in _WORD.findall(spaced))
