"""Score the latest snapshot of open entities with the active model and write the result back."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pandas as pd

from ml.dataset import load_latest_snapshot
from ml.features import ModelSpec
from ml.registry import ModelBundle, load_active
from scorehouse.config import Settings
from scoring.playbook import CHURN_DEFAULT_ACTION, CHURN_PLAYBOOK, recommend
from scoring.reasons import factor_contributions, top_factors
from scoring.scores import to_score, to_tier
from scoring.sentences import describe
from scoring.writeback import write_scores

BATCH_ROWS = 200_000


def _drivers(bundle: ModelBundle, batch: pd.DataFrame) -> list[str]:
    """The factors that raise the probability most, in words, joined by ' | '."""
    contributions = factor_contributions(bundle, batch)
    records = batch.to_dict("records")
    return [" | ".join(describe(f, row) for f in factors) for factors, row in zip(top_factors(contributions), records)]


def score_snapshot(settings: Settings, spec: ModelSpec, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Probabilities, scores, tiers (and for churn: drivers and interventions) for the newest as-of date."""
    say = progress or (lambda _msg: None)
    bundle = load_active(settings, spec.name)
    snapshot = load_latest_snapshot(settings, spec)
    scored_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    probabilities, drivers = [], []
    for start in range(0, len(snapshot), BATCH_ROWS):
        batch = snapshot.iloc[start : start + BATCH_ROWS]
        probabilities.append(bundle.predict_proba(batch))
        if spec.reason_groups:
            drivers.extend(_drivers(bundle, batch))
        say(f"scored {min(start + BATCH_ROWS, len(snapshot)):,}/{len(snapshot):,} rows")
    probability = np.concatenate(probabilities) if probabilities else np.zeros(0)
    scores = pd.DataFrame(
        {
            spec.entity_key: snapshot[spec.entity_key].to_numpy(),
            "as_of_date": pd.to_datetime(snapshot[spec.date_column]).dt.date.to_numpy(),
            "scored_at": scored_at,
            "model_version": bundle.model_version,
            spec.probability_column: probability,
            "score": to_score(probability),
            spec.tier_column: to_tier(probability, bundle.tier_cutoffs, spec.tier_labels),
            "is_above_threshold": probability >= bundle.threshold,
        }
    )
    if spec.reason_groups:
        scores["top_drivers"] = drivers
    if spec.name == "customer_churn":
        scores["recommended_intervention"], scores["interventions"] = recommend(
            snapshot, CHURN_PLAYBOOK, CHURN_DEFAULT_ACTION
        )
    return scores


def score_model(settings: Settings, spec: ModelSpec, progress: Callable[[str], None] | None = None) -> int:
    """Score the newest snapshot and publish it; returns the number of rows written."""
    scores = score_snapshot(settings, spec, progress)
    write_scores(settings, spec.score_table, spec.history_table, scores)
    return len(scores)
