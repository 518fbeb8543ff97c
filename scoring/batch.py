"""Score the latest snapshot with the active model: probabilities, scores, tiers, reasons and actions,
written back with history. Leads also get fit and engagement sub-scores, a control flag and a segment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from core.config import Settings
from core.warehouse import Connection, connect, table_exists
from ml.dataset import load_labelled_sample, load_latest_snapshot, load_snapshot_at
from ml.features import LEAD_ENGAGEMENT_FACTORS, LEAD_FIT_FACTORS, ModelSpec
from ml.registry import ModelBundle, load_active
from ml.scores import to_score, to_tier
from scoring.drift import drift_table
from scoring.occlusion import input_space_occlusion
from scoring.playbook import CHURN_DEFAULT_ACTION, CHURN_PLAYBOOK, LEAD_DEFAULT_ACTION, LEAD_PLAYBOOK, recommend
from scoring.reasons import factor_contributions, probability_with_typical, top_factor_indices
from scoring.segments import SEGMENT_COLUMNS, segment_leads
from scoring.sentences import describe_many
from scoring.writeback import ScoringRun, write_scores

# Rows scored at a time. Each batch's preprocessing allocates several arrays of rows x encoded columns
# (about 100 MB each at 50,000 rows). Larger batches cost more in system time (the kernel mapping memory)
# than they save: scoring 420,000 leads took 7-9 s of system time and 19-25 s in all in batches of
# 200,000, against 2-5 s and mostly 14-16 s in batches of 50,000 (25,000 was no faster).
BATCH_ROWS = 50_000
VERIFY_ROWS = 500  # rows on which the fast explanation path must reproduce plain occlusion before it is used
REASONS_PER_SIDE = 3



def _reason_rows(spec: ModelSpec, batch: pd.DataFrame, contributions: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Long reason rows (top factors raising and lowering the probability) and the raising ones in words."""
    ids = batch[spec.entity_key].to_numpy()
    values = contributions.to_numpy()
    names = np.asarray(contributions.columns)
    frames, raising_text = [], np.full(len(batch), "", dtype=object)
    for direction, raising in (("raises", True), ("lowers", False)):
        picks = top_factor_indices(values, REASONS_PER_SIDE, raising=raising)
        rows, ranks = np.nonzero(picks >= 0)  # row by row, strongest first
        factors = picks[rows, ranks]
        sentences = np.empty(len(rows), dtype=object)
        for factor in np.unique(factors):
            chosen = factors == factor
            sentences[chosen] = describe_many(str(names[factor]), batch.iloc[rows[chosen]])
        frames.append(pd.DataFrame({
            "entity_id": ids[rows], "direction": direction, "rank": ranks + 1, "factor": names[factors],
            "reason": sentences, "contribution": values[rows, factors].astype(float),
        }))
        if raising:
            # each row's sentences in rank order, joined with " | "
            for rank in range(REASONS_PER_SIDE):
                at_rank = ranks == rank
                so_far = raising_text[rows[at_rank]]
                raising_text[rows[at_rank]] = np.where(so_far == "", sentences[at_rank],
                                                       so_far + " | " + sentences[at_rank])
    return pd.concat(frames, ignore_index=True), list(raising_text)


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


@dataclass
class _Explained:
    """Per row: the probability, the sub-scores' probabilities, the raising reasons in words; long reason rows."""

    probability: np.ndarray
    sub_scores: dict[str, np.ndarray]
    text: list[str]
    reasons: pd.DataFrame


def _explain(bundle: ModelBundle, spec: ModelSpec, snapshot: pd.DataFrame, say) -> _Explained:
    """Probabilities, factor contributions and sub-scores, batch by batch (bounded memory)."""
    # Sub-scores: the probability with the other family at typical values (fit = engagement made typical).
    sub_scores = {"fit": spec.columns_of(LEAD_ENGAGEMENT_FACTORS), "engagement": spec.columns_of(LEAD_FIT_FACTORS)} \
        if spec.name == "lead_conversion" else {}
    groups = [columns for _, columns in bundle.spec.reason_groups]
    fast = input_space_occlusion(bundle, snapshot.iloc[:VERIFY_ROWS], groups + list(sub_scores.values()))
    say("explanations: " + ("preprocessing once per batch (checked equal to plain occlusion)" if fast
                            else "plain occlusion"))
    parts: dict[str, list] = {"p": [], "text": [], "reasons": [], **{name: [] for name in sub_scores}}
    for start in range(0, len(snapshot), BATCH_ROWS):
        batch = snapshot.iloc[start : start + BATCH_ROWS]
        if fast is not None:
            encoded = fast.encode(batch)
            base = fast.probability(encoded)
            contributions = pd.DataFrame({factor: base - fast.probability(encoded, columns)
                                          for factor, columns in bundle.spec.reason_groups}, index=batch.index)
            typical = {name: fast.probability(encoded, columns) for name, columns in sub_scores.items()}
        else:
            base = bundle.predict_proba(batch)
            contributions = factor_contributions(bundle, batch)
            typical = {name: probability_with_typical(bundle, batch, columns) for name, columns in sub_scores.items()}
        parts["p"].append(base)
        reasons, text = _reason_rows(spec, batch, contributions)
        parts["reasons"].append(reasons)
        parts["text"].extend(text)
        for name, probability in typical.items():
            parts[name].append(probability)
        say(f"scored {min(start + BATCH_ROWS, len(snapshot)):,}/{len(snapshot):,} rows")
    joined = lambda key: np.concatenate(parts[key]) if parts[key] else np.zeros(0)
    return _Explained(joined("p"), {name: joined(name) for name in sub_scores}, parts["text"],
                      pd.concat(parts["reasons"], ignore_index=True) if parts["reasons"] else pd.DataFrame())


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


def _add_lead_columns(con: Connection, settings: Settings, spec: ModelSpec, snapshot: pd.DataFrame,
                      scores: pd.DataFrame, explained: _Explained) -> pd.DataFrame:
    """Lead scores also get fit and engagement sub-scores, reasons in words, the next action and a segment;
    returns the segments' profile."""
    scores["fit_score"] = to_score(explained.sub_scores["fit"])
    scores["engagement_score"] = to_score(explained.sub_scores["engagement"])
    scores["top_reasons"] = explained.text
    scores["next_action"], _ = recommend(snapshot, LEAD_PLAYBOOK, LEAD_DEFAULT_ACTION)
    history = load_labelled_sample(con, spec, 50_000, list(SEGMENT_COLUMNS))
    labels, profile, k, silhouette = segment_leads(snapshot, history, spec.label, settings.random_seed)
    scores["segment_id"] = labels
    return profile.assign(k=k, silhouette=silhouette)


def score_snapshot(con: Connection, settings: Settings, spec: ModelSpec,
                   progress: Callable[[str], None] | None = None) -> ScoringRun:
    """The newest snapshot scored with the active model: scores, reasons, (lead) segments and drift."""
    say = progress or (lambda _msg: None)
    bundle: ModelBundle = load_active(con, spec.name)
    if str(bundle.metadata.get("signal", "")).startswith("no signal"):
        say(f"warning: {bundle.model_version}: {bundle.metadata['signal']}")
    snapshot = load_latest_snapshot(con, spec)
    scored_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    explained = _explain(bundle, spec, snapshot, say)
    probability = explained.probability
    as_of = pd.to_datetime(snapshot[spec.date_column]).dt.date.to_numpy()
    stamp = {"scored_at": scored_at, "model_version": bundle.model_version}
    scores = pd.DataFrame({
        spec.entity_key: snapshot[spec.entity_key].to_numpy(),
        "as_of_date": as_of,
        **stamp,
        spec.probability_column: probability,
        "score": to_score(probability),
        spec.tier_column: to_tier(probability, bundle.tier_cutoffs, spec.tier_labels),
        "is_above_threshold": probability >= bundle.threshold,
    })
    reasons = explained.reasons
    reasons.insert(0, "model_name", spec.name)
    reasons["as_of_date"] = as_of[0] if len(as_of) else None
    reasons["scored_at"], reasons["model_version"] = scored_at, bundle.model_version
    segments = None
    if spec.name == "lead_conversion":
        segments = _add_lead_columns(con, settings, spec, snapshot, scores, explained).assign(**stamp)
    else:
        scores["top_drivers"] = explained.text
        scores["recommended_intervention"], scores["interventions"] = recommend(
            snapshot, CHURN_PLAYBOOK, CHURN_DEFAULT_ACTION
        )
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
