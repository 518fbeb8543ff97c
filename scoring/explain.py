"""A feature row becomes a score: the active model's probability for each row, the factors that raise and lower
it (occlusion against a typical row), their sentences, and the lead sub-scores, batch by batch. The same function
runs on the driver (DuckDB) and on Spark's executors (scoring/on_spark.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.features import LEAD_ENGAGEMENT_FACTORS, LEAD_FIT_FACTORS, ModelSpec
from ml.registry import ModelBundle
from scoring.occlusion import InputSpaceOcclusion, input_space_occlusion
from scoring.reasons import factor_contributions, probability_with_typical, top_factor_indices
from scoring.sentences import describe_many

# Rows scored at a time. Each batch's preprocessing allocates several arrays of rows x encoded columns
# (about 100 MB each at 50,000 rows). Larger batches cost more in system time (the kernel mapping memory)
# than they save: scoring 420,000 leads took 7-9 s of system time and 19-25 s in all in batches of
# 200,000, against 2-5 s and mostly 14-16 s in batches of 50,000 (25,000 was no faster).
BATCH_ROWS = 50_000
VERIFY_ROWS = 500  # rows on which the fast explanation path must reproduce plain occlusion before it is used
REASONS_PER_SIDE = 3


def reason_rows(spec: ModelSpec, batch: pd.DataFrame, contributions: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
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


@dataclass
class Explained:
    """Per row: the probability, the sub-scores' probabilities, the raising reasons in words; long reason rows."""

    probability: np.ndarray
    sub_scores: dict[str, np.ndarray]
    text: list[str]
    reasons: pd.DataFrame


def sub_score_columns(spec: ModelSpec) -> dict[str, list[str]]:
    """Lead sub-scores: the probability with the other family at typical values (fit = engagement made typical)."""
    if spec.name != "lead_conversion":
        return {}
    return {"fit": spec.columns_of(LEAD_ENGAGEMENT_FACTORS), "engagement": spec.columns_of(LEAD_FIT_FACTORS)}


def verified_fast_path(bundle: ModelBundle, spec: ModelSpec, sample: pd.DataFrame) -> InputSpaceOcclusion | None:
    """The fast explanation path if it reproduces plain occlusion on (up to VERIFY_ROWS of) `sample`, else None."""
    groups = [columns for _, columns in bundle.spec.reason_groups]
    return input_space_occlusion(bundle, sample.iloc[:VERIFY_ROWS], groups + list(sub_score_columns(spec).values()))


_VERIFY = object()


def explain(bundle: ModelBundle, spec: ModelSpec, snapshot: pd.DataFrame, say,
            fast: InputSpaceOcclusion | None | object = _VERIFY) -> Explained:
    """Probabilities, factor contributions and sub-scores, batch by batch (bounded memory). `fast`: a path
    verified earlier (the service verifies once, on the stored snapshot), None for plain occlusion; by default
    it is verified on this snapshot's first rows."""
    sub_scores = sub_score_columns(spec)
    if fast is _VERIFY:
        fast = verified_fast_path(bundle, spec, snapshot)
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
        reasons, text = reason_rows(spec, batch, contributions)
        parts["reasons"].append(reasons)
        parts["text"].extend(text)
        for name, probability in typical.items():
            parts[name].append(probability)
        say(f"scored {min(start + BATCH_ROWS, len(snapshot)):,}/{len(snapshot):,} rows")
    joined = lambda key: np.concatenate(parts[key]) if parts[key] else np.zeros(0)
    return Explained(joined("p"), {name: joined(name) for name in sub_scores}, parts["text"],
                      pd.concat(parts["reasons"], ignore_index=True) if parts["reasons"] else pd.DataFrame())
