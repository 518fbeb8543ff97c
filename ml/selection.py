"""Model selection under rolling out-of-time folds with an embargo, a bounded grid, and a stated rule.

Folds: the development period (every row whose label window ends before the test period) is cut into
its last `folds` blocks of as-of dates; each block is validated by a model fitted only on rows whose
label windows end before the block starts. Class imbalance: balanced sample weights, computed inside
each fold's training rows only. Rule: a candidate is eligible only if it beats the simple logistic
baseline's PR-AUC in every fold (a consistent gain over time, not a lucky average); among the eligible
ones and the baseline, the highest mean fold PR-AUC wins; within 0.005 of it, the highest mean ROC-AUC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.utils.class_weight import compute_sample_weight

from ml.features import ModelSpec
from ml.pipeline import BASELINE, CANDIDATES, Candidate, make_preparation

MIN_FOLD_POSITIVES = 10
MAX_FOLD_ROWS = 60_000  # each fold fit sees at most this many rows (a fixed random sample): bounded cost
PR_AUC_TIE = 0.005


@dataclass
class CandidateResult:
    name: str
    params: dict
    fold_pr_auc: list[float] = field(default_factory=list)
    fold_roc_auc: list[float] = field(default_factory=list)
    searched: list[dict] = field(default_factory=list)  # every grid point with its mean PR-AUC

    @property
    def pr_auc(self) -> float:
        return float(np.mean(self.fold_pr_auc))

    @property
    def roc_auc(self) -> float:
        return float(np.mean(self.fold_roc_auc))


def _blocks(unique: np.ndarray, folds: int, per_date: np.ndarray) -> list[np.ndarray]:
    """The last `folds` blocks of dates, each holding about 1/(folds + 3) of the weight (dates or positives)."""
    tail = np.cumsum(per_date[::-1])[::-1]  # weight from each date to the end
    share = tail[0] / (folds + 3)
    edges = [int(np.flatnonzero(tail >= k * share).max()) for k in range(folds, -1, -1)]
    edges[-1] = len(unique)
    return [unique[edges[i]:edges[i + 1]] for i in range(folds) if edges[i + 1] > edges[i]]


def rolling_folds(dates: pd.Series, horizon_days: int, folds: int,
                  labels: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train mask, validation mask) per fold, oldest first; every train window ends before its block. Blocks
    hold equal numbers of dates; given the labels, a block with fewer than MIN_FOLD_POSITIVES positives makes all
    blocks hold equal numbers of positives instead (outcomes sparse in some months)."""
    as_of = pd.to_datetime(dates).to_numpy()
    unique, inverse = np.unique(as_of, return_inverse=True)
    block = max(1, len(unique) // (folds + 3))
    blocks = [unique[len(unique) - k * block: len(unique) - k * block + block] for k in range(folds, 0, -1)]
    if labels is not None:
        positives = np.bincount(inverse, weights=np.asarray(labels, dtype=float), minlength=len(unique))
        if min(positives[np.isin(unique, b)].sum() for b in blocks) < MIN_FOLD_POSITIVES:
            blocks = _blocks(unique, folds, positives)
    horizon = np.timedelta64(horizon_days, "D")
    out = []
    for block_dates in blocks:
        validation = np.isin(as_of, block_dates)
        train = as_of + horizon <= block_dates[0]
        if train.any() and validation.any():
            out.append((train, validation))
    if not out:
        raise ValueError("not enough history for rolling out-of-time folds at this label horizon")
    return out


def _sample(mask: np.ndarray, limit: int, seed: int) -> np.ndarray:
    index = np.flatnonzero(mask)
    if len(index) > limit:
        index = np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))
    return index


def fit_weighted(pipeline, frame: pd.DataFrame, spec: ModelSpec):
    y = frame[spec.label].astype(int).to_numpy()
    return pipeline.fit(frame[list(spec.features)], y, model__sample_weight=compute_sample_weight("balanced", y))


def evaluate_candidates(frame: pd.DataFrame, spec: ModelSpec, horizon_days: int, seed: int, threads: int,
                        folds: int = 3, candidates: tuple[Candidate, ...] = CANDIDATES,
                        progress: Callable[[str], None] | None = None) -> list[CandidateResult]:
    """Every grid point of every candidate, fitted and scored in every fold.

    Within a fold the candidates differ only in their estimator and in whether numbers are scaled, so the
    preparation is fitted once per scaling choice and its output shared (identical to fitting each pipeline
    whole). One fold's matrices are held at a time."""
    say = progress or (lambda _m: None)
    fold_masks = rolling_folds(frame[spec.date_column], horizon_days, folds, frame[spec.label].astype(int).to_numpy())
    features = list(spec.features)
    trials = {(c.name, i): CandidateResult(c.name, params) for c in candidates for i, params in enumerate(c.grid)}
    for fold, (train, validation) in enumerate(fold_masks):
        rows = frame.iloc[_sample(train, MAX_FOLD_ROWS, seed + fold)]
        held = frame[validation]
        y = rows[spec.label].astype(int).to_numpy()
        held_y = held[spec.label].astype(int).to_numpy()
        if len(np.unique(y)) < 2 or len(np.unique(held_y)) < 2:
            say(f"  fold {fold + 1}/{len(fold_masks)} skipped: a single label class")
            continue
        weights = compute_sample_weight("balanced", y)
        for scale in dict.fromkeys(c.scale for c in candidates):
            preparation = make_preparation(spec, scale)
            encoded = preparation.fit_transform(rows[features], y)
            held_encoded = preparation.transform(held[features])
            for candidate in (c for c in candidates if c.scale == scale):
                for i, params in enumerate(candidate.grid):
                    model = candidate.build(params, seed, threads).fit(encoded, y, sample_weight=weights)
                    p = model.predict_proba(held_encoded)[:, 1]
                    trials[candidate.name, i].fold_pr_auc.append(float(average_precision_score(held_y, p)))
                    trials[candidate.name, i].fold_roc_auc.append(float(roc_auc_score(held_y, p)))
            del encoded, held_encoded
        say(f"  fold {fold + 1}/{len(fold_masks)}: {len(rows):,} training rows, {len(held):,} held out")
    results = []
    for candidate in candidates:
        of_candidate = (trials[candidate.name, i] for i in range(len(candidate.grid)))
        tried = [trial for trial in of_candidate if trial.fold_pr_auc]
        if not tried:
            continue
        best = max(tried, key=lambda trial: trial.pr_auc)  # the first of equals, as the grid is ordered
        best.searched = [{"params": t.params, "pr_auc": t.pr_auc, "roc_auc": t.roc_auc} for t in tried]
        results.append(best)
        say(f"  {candidate.name:<24} fold PR-AUC {best.pr_auc:.3f}  ROC-AUC {best.roc_auc:.3f}  {best.params}")
    if not results:
        raise ValueError("no candidate could be evaluated: every fold had a single label class")
    return results


def choose_winner(results: list[CandidateResult], baseline: str = BASELINE) -> CandidateResult:
    """The rule in the module docstring."""
    base = next((r for r in results if r.name == baseline), None)
    if base is None:
        eligible = results
    else:
        eligible = [base] + [
            r for r in results
            if r is not base and len(r.fold_pr_auc) == len(base.fold_pr_auc)
            and all(mine > theirs for mine, theirs in zip(r.fold_pr_auc, base.fold_pr_auc))
        ]
    top = max(r.pr_auc for r in eligible)
    close = [r for r in eligible if r.pr_auc >= top - PR_AUC_TIE]
    return max(close, key=lambda r: (r.roc_auc, r.pr_auc))
