"""What the learning benchmarks print and keep of each run's reward curve."""

from __future__ import annotations

import json
from pathlib import Path


def record(
    results: dict[str, list[tuple[int, float]]],
    arm: str,
    seed: int,
    curve: list[tuple[int, float]],
    out: Path | None,
) -> None:
    """Print ``arm seed N: step:return ...`` and keep the curve (in ``out`` too, as JSON)."""
    results[f"{arm}-{seed}"] = curve
    cells = " ".join(f"{step}:{value:.2f}" for step, value in curve)
    print(f"{arm:<10} seed {seed}: {cells}", flush=True)
    if out:
        out.write_text(json.dumps(results, indent=1))
