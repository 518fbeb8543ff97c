"""Score the latest snapshot with the active model: probabilities, scores, tiers, reasons and actions,
written back with history. Leads also get fit and engagement sub-scores, a control flag and a segment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from core.config import Settings
from core.warehouse import Connection, connect, is_spark, table_exists
from ml.dataset import load_labelled_sample, load_latest_snapshot, load_snapshot_at
from ml.features import ModelSpec
from ml.registry import ModelBundle, load_active
from ml.scores import to_score, to_tier
from scoring.drift import drift_table
from scoring.explain import Explained, explain
from scoring.on_spark import explain_on_spark
from scoring.playbook import CHURN_DEFAULT_ACTION, CHURN_PLAYBOOK, LEAD_DEFAULT_ACTION, LEAD_PLAYBOOK, recommend
from scoring.segments import SEGMENT_COLUMNS, segment_leads
from scoring.writeback import ScoringRun, write_scores


def _previous_run(con: Connection, spec: ModelSpec) -> tuple[pd.Timestamp, pd.DataFrame] | None:
    if not table_exists(con, "scores", spec.history_table):
        return None
    last = con.execute(f"select max(scored_at) from scores.{spec.history_table}").fetchall()[0][0]
    if last is None:
        return None
    previous = con.execute(
        f"select as_of_date, {spec.probability_column} from scores.{spec.history_table} where scored_at = ?", [last]
    ).df()
    return pd.Timestamp(previous.as_of_date.iloc[0]), previous


def _drift(con: Connection, spec: ModelSpec, snapshot: pd.DataFrame, probability: np.ndarray) -> pd.DataFrame:
    """PSI of the score against the previous run and of each feature against the previous run's snapshot."""
    previous = _previous_run(con, spec)
    if previous is None or not len(snapshot):
        return pd.DataFrame()
    reference_date, previous_scores = previous
    reference_rows = load_snapshot_at(con, spec, reference_date.date())
    drift = drift_table(reference_rows, snapshot, list(spec.features))
    score_psi = drift_table(previous_scores.rename(columns={spec.probability_column: "score"}),
                            pd.DataFrame({"score": probability}), ["score"])
    return pd.concat([score_psi, drift], ignore_index=True).assign(reference_as_of_date=reference_date.date())


def score_columns(bundle: ModelBundle, spec: ModelSpec, rows: pd.DataFrame, explained: Explained) -> pd.DataFrame:
    """Feature rows (mart columns) and their explanation as score columns: probability, score, tier, flag, and
    for leads the sub-scores, reasons and next action, for customers the drivers and interventions. Shared by the
    batch and by scores computed on request (scorehouse.api)."""
    probability = explained.probability
    scores = pd.DataFrame({
        spec.entity_key: rows[spec.entity_key].to_numpy(),
        "as_of_date": pd.to_datetime(rows[spec.date_column]).dt.date.to_numpy(),
        "model_version": bundle.model_version,
        spec.probability_column: probability,
        "score": to_score(probability),
        spec.tier_column: to_tier(probability, bundle.tier_cutoffs, spec.tier_labels),
        "is_above_threshold": probability >= bundle.threshold,
    })
    if spec.name == "lead_conversion":
        scores["fit_score"] = to_score(explained.sub_scores["fit"])
        scores["engagement_score"] = to_score(explained.sub_scores["engagement"])
        scores["top_reasons"] = explained.text
        scores["next_action"], _ = recommend(rows, LEAD_PLAYBOOK, LEAD_DEFAULT_ACTION)
    else:
        scores["top_drivers"] = explained.text
        scores["recommended_intervention"], scores["interventions"] = recommend(
            rows, CHURN_PLAYBOOK, CHURN_DEFAULT_ACTION
        )
    return scores


def score_snapshot(con: Connection, settings: Settings, spec: ModelSpec,
                   progress: Callable[[str], None] | None = None) -> ScoringRun:
    """The newest snapshot scored with the active model: scores, reasons, (lead) segments and drift."""
    say = progress or (lambda _msg: None)
    bundle: ModelBundle = load_active(con, spec.name)
    if str(bundle.metadata.get("signal", "")).startswith("no signal"):
        say(f"warning: {bundle.model_version}: {bundle.metadata['signal']}")
    snapshot = load_latest_snapshot(con, spec)
    scored_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    # on Spark the rows are explained where they are, on the executors; on DuckDB here, batch by batch
    explained = explain_on_spark(con, bundle, spec, snapshot, say) if is_spark(con) else \
        explain(bundle, spec, snapshot, say)
    probability = explained.probability
    scores = score_columns(bundle, spec, snapshot, explained)
    scores.insert(2, "scored_at", scored_at)
    as_of = scores["as_of_date"].to_numpy()
    stamp = {"scored_at": scored_at, "model_version": bundle.model_version}
    reasons = explained.reasons
    reasons.insert(0, "model_name", spec.name)
    reasons["as_of_date"] = as_of[0] if len(as_of) else None
    reasons["scored_at"], reasons["model_version"] = scored_at, bundle.model_version
    segments = None
    if spec.name == "lead_conversion":
        history = load_labelled_sample(con, spec, 50_000, list(SEGMENT_COLUMNS))
        labels, profile, k, silhouette = segment_leads(snapshot, history, spec.label, settings.random_seed)
        scores["segment_id"] = labels
        segments = profile.assign(k=k, silhouette=silhouette, **stamp)
    drift = _drift(con, spec, snapshot, probability)
    if len(drift):
        drift = drift.assign(model_name=spec.name, **stamp, as_of_date=as_of[0])
    return ScoringRun(scores, reasons, segments, drift)


def score_model(settings: Settings, spec: ModelSpec, progress: Callable[[str], None] | None = None) -> int:
    """Score the newest snapshot and publish it, on one connection; returns the number of rows written."""
    with connect(settings, create=False) as con:
        run = score_snapshot(con, settings, spec, progress)
        write_scores(con, spec, run)
    return len(run.scores)
