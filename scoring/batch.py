"""Score the latest snapshot of open entities with the active model and write the result back."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pandas as pd

from ml.dataset import load_latest_snapshot
from ml.features import ModelSpec
from ml.registry import load_active
from scorehouse.config import Settings
from scoring.scores import to_score, to_tier
from scoring.writeback import write_scores

BATCH_ROWS = 200_000


def score_snapshot(settings: Settings, spec: ModelSpec, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Probabilities, scores and tiers for every entity in the mart's newest as-of date."""
    say = progress or (lambda _msg: None)
    bundle = load_active(settings, spec.name)
    snapshot = load_latest_snapshot(settings, spec)
    scored_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    parts = []
    for start in range(0, len(snapshot), BATCH_ROWS):
        batch = snapshot.iloc[start : start + BATCH_ROWS]
        parts.append(bundle.predict_proba(batch))
        say(f"scored {min(start + BATCH_ROWS, len(snapshot)):,}/{len(snapshot):,} rows")
    probability = np.concatenate(parts) if parts else np.zeros(0)
    return pd.DataFrame(
        {
            spec.entity_key: snapshot[spec.entity_key].to_numpy(),
            "as_of_date": pd.to_datetime(snapshot[spec.date_column]).dt.date.to_numpy(),
            "scored_at": scored_at,
            "model_version": bundle.model_version,
            spec.probability_column: probability,
            "score": to_score(probability),
            "tier": to_tier(probability, bundle.tier_cutoffs),
            "is_above_threshold": probability >= bundle.threshold,
        }
    )


def score_model(settings: Settings, spec: ModelSpec, progress: Callable[[str], None] | None = None) -> int:
    """Score the newest snapshot and publish it; returns the number of rows written."""
    scores = score_snapshot(settings, spec, progress)
    write_scores(settings, spec.score_table, spec.history_table, scores)
    return len(scores)
