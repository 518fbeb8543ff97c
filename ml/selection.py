"""Model selection under rolling out-of-time folds with an embargo, a bounded grid, and a stated rule.

Folds: the development period (every row whose label window ends before the test period) is cut into
its last `folds` blocks of as-of dates; each block is validated by a model fitted only on rows whose
label windows end before the block starts. Class imbalance: balanced sample weights, computed inside
each fold's training rows only. Rule: a candidate is eligible only if it beats the simple logistic
baseline's PR-AUC in every fold (a consistent gain over time, not a lucky average); among the eligible
ones and the baseline, the highest mean fold PR-AUC wins; within 0.005 of it, the highest mean ROC-AUC.

Search: successive halving over the grid points of all candidates, with training rows per fold as the
resource; only grid points that reach the last rung (the most rows) are eligible, and the baseline's best grid
point always does. scikit-learn's halving search is not used: it refits the preparation for every grid point
and can drop the baseline that the rule compares with fold by fold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from ml.features import ModelSpec
from ml.pipeline import BASELINE, CANDIDATES, Candidate, in_row_chunks, make_preparation

MIN_FOLD_POSITIVES = 10
MAX_FOLD_ROWS = 30_000  # each fold fit sees at most this many rows (a fixed random sample): bounded cost
# 30,000 rather than 60,000: at 100,000 simulated leads selection took 39 s instead of 93 s and chose the same
# winner and grid point (fold PR-AUC 0.269 against 0.272); the final fit still sees up to 150,000 rows.
# Successive halving: rung k fits on up to MAX_FOLD_ROWS / RUNG_FACTOR ** (RUNGS - 1 - k) rows per fold and keeps
# the best 1/RUNG_FACTOR of the challengers for the next; most grid points are ruled out on a ninth of the rows.
RUNG_FACTOR = 3
RUNGS = 3
# Before the last rung a fold is scored on at most this many held-out rows per training row (a fixed random
# sample): ranking grid points coarsely needs far fewer rows than the final comparison.
EARLY_HELD_PER_TRAINING_ROW = 3
# The last rung scores each fold on at most this many of its block's rows (all of them at 100,000 leads, whose
# blocks hold 113,000-148,000): at a million leads a block holds several times more, and every held-out row
# costs memory (a float row of ~280 columns per preparation) and time, while the figures barely move.
MAX_HELD_ROWS = 150_000
PR_AUC_TIE = 0.005


@dataclass
class CandidateResult:
    name: str
    params: dict
    fold_pr_auc: list[float] = field(default_factory=list)
    fold_roc_auc: list[float] = field(default_factory=list)
    searched: list[dict] = field(default_factory=list)  # every grid point and rung with its mean PR-AUC
    rows: int = MAX_FOLD_ROWS  # the most rows a fold fit saw (the rung's cap): results compare only at equal rows

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


def rung_caps(fold_rows: list[int]) -> list[int]:
    """Rows per fold fit at each rung of the halving: MAX_FOLD_ROWS / RUNG_FACTOR ** k, smallest first, ending
    at the first cap that covers every fold's training rows (small data: one rung, every row)."""
    caps = []
    for k in range(RUNGS - 1, -1, -1):
        caps.append(MAX_FOLD_ROWS // RUNG_FACTOR ** k)
        if caps[-1] >= max(fold_rows):
            break
    return caps


def _survivors(scored: list[CandidateResult], baseline: str) -> list[CandidateResult]:
    """The baseline's best grid point (the rule compares with it fold by fold at the last rung), and the best
    1/RUNG_FACTOR of the other grid points, each by mean fold PR-AUC (the first of equals, as the grid is ordered).

    The baseline's grid is halved like any other: its weakly regularised point took 6 s a fold at the last rung
    on 100,000 leads (0.6 s for the strong one), about a third of the whole selection, to lose every time."""
    def best_first(trials):
        return sorted(trials, key=lambda t: -t.pr_auc)
    base = best_first(t for t in scored if t.name == baseline)[:1]
    others = best_first(t for t in scored if t.name != baseline)
    return base + others[:math.ceil(len(others) / RUNG_FACTOR)]


def _score_fold(frame: pd.DataFrame, spec: ModelSpec, train: np.ndarray, validation: np.ndarray, fold: int,
                cap: int, held_cap: int, configs: list[tuple[Candidate, dict]], seed: int,
                threads: int) -> tuple[list[tuple[float, float]] | None, int, int]:
    """(per configuration: held-out PR-AUC and ROC-AUC, or None for a single-class fold; training rows; held
    rows) of one fold. Within a fold the candidates differ only in their estimator and in whether numbers are
    scaled, so the preparation is fitted once per scaling choice and its output shared (identical to fitting
    each pipeline whole)."""
    features = list(spec.features)
    rows = frame.iloc[_sample(train, cap, seed + fold)]
    held = frame.iloc[_sample(validation, held_cap, seed + fold)]
    y = rows[spec.label].astype(int).to_numpy()
    held_y = held[spec.label].astype(int).to_numpy()
    if len(np.unique(y)) < 2 or len(np.unique(held_y)) < 2:
        return None, len(rows), len(held)
    weights = compute_sample_weight("balanced", y)
    scores: list[tuple[float, float] | None] = [None] * len(configs)
    for scale in dict.fromkeys(c.scale for c, _ in configs):
        preparation = make_preparation(spec, scale)
        encoded = preparation.fit_transform(rows[features], y)
        held_encoded = in_row_chunks(preparation.transform, held[features])
        for k, (candidate, params) in enumerate(configs):
            if candidate.scale == scale:
                one_thread = len(rows) < candidate.one_thread_below
                threads_used = 1 if one_thread else threads
                with threadpool_limits(limits=1, user_api="openmp") if one_thread else nullcontext():
                    p = candidate.build(params, seed, threads_used).fit(
                        encoded, y, sample_weight=weights).predict_proba(held_encoded)[:, 1]
                scores[k] = (float(average_precision_score(held_y, p)), float(roc_auc_score(held_y, p)))
        del encoded, held_encoded
    return scores, len(rows), len(held)


def _run_rung(frame: pd.DataFrame, spec: ModelSpec, fold_masks, cap: int, held_cap: int,
              configs: list[tuple[Candidate, dict]], seed: int, threads: int, say) -> list[CandidateResult]:
    """Every configuration fitted on at most `cap` rows of each fold and scored on at most `held_cap` rows of the
    fold's block. One fold's matrices are held at a time. No two fits run at once on threads: it took as long
    (boosting and the forests use both cores already), and liblinear draws from the C library's process-wide
    random generator, so two logistic fits at once give other models from run to run (a fold's PR-AUC 0.23117
    alone, 0.23123 beside another fit)."""
    trials = [CandidateResult(c.name, params, rows=cap) for c, params in configs]
    for fold, (train, validation) in enumerate(fold_masks):
        scores, training_rows, held_rows = _score_fold(frame, spec, train, validation, fold, cap, held_cap, configs,
                                                       seed, threads)
        if scores is None:
            say(f"    fold {fold + 1}/{len(fold_masks)} skipped: a single label class")
            continue
        for trial, (pr_auc, roc_auc) in zip(trials, scores):
            trial.fold_pr_auc.append(pr_auc)
            trial.fold_roc_auc.append(roc_auc)
        say(f"    fold {fold + 1}/{len(fold_masks)}: {training_rows:,} training rows, {held_rows:,} held out")
    return [t for t in trials if t.fold_pr_auc]


def evaluate_candidates(frame: pd.DataFrame, spec: ModelSpec, horizon_days: int, seed: int, threads: int,
                        folds: int = 3, candidates: tuple[Candidate, ...] = CANDIDATES,
                        progress: Callable[[str], None] | None = None, baseline: str = BASELINE,
                        baseline_settled: Callable[[dict], None] | None = None) -> list[CandidateResult]:
    """Successive halving over every grid point of every candidate, in every fold.

    Rung by rung, the surviving grid points are fitted on up to RUNG_FACTOR times more rows per fold and a
    third of the challengers go on (the baseline's best grid point always does); the last rung fits on every
    fold's rows up to MAX_FOLD_ROWS and scores on up to MAX_HELD_ROWS of each fold's block. Returns, per
    candidate, its best grid point at the last rung it reached, with every grid point it tried at every rung in
    `searched`. `baseline_settled`, if given, is called with the baseline's grid point as soon as the first
    rung has chosen it (only its best goes on), before the later rungs run."""
    say = progress or (lambda _m: None)
    fold_masks = rolling_folds(frame[spec.date_column], horizon_days, folds, frame[spec.label].astype(int).to_numpy())
    caps = rung_caps([int(train.sum()) for train, _ in fold_masks])
    by_name = {c.name: c for c in candidates}
    configs = [(c, params) for c in candidates for params in c.grid]
    history: list[CandidateResult] = []
    for rung, cap in enumerate(caps):
        say(f"  rung {rung + 1}/{len(caps)}: {len(configs)} grid points on up to {cap:,} rows per fold")
        last = rung == len(caps) - 1
        scored = _run_rung(frame, spec, fold_masks, cap, MAX_HELD_ROWS if last else EARLY_HELD_PER_TRAINING_ROW * cap,
                           configs, seed, threads, say)
        history += scored
        if not last:
            survivors = _survivors(scored, baseline)
            configs = [(by_name[t.name], t.params) for t in survivors]
            if rung == 0 and baseline_settled and survivors and survivors[0].name == baseline:
                baseline_settled(survivors[0].params)
    results = []
    for candidate in candidates:
        tried = [t for t in history if t.name == candidate.name]
        if not tried:
            continue
        furthest = max(t.rows for t in tried)
        best = max((t for t in tried if t.rows == furthest), key=lambda t: t.pr_auc)  # first of equals: grid order
        best.searched = [{"params": t.params, "rows": t.rows, "pr_auc": t.pr_auc, "roc_auc": t.roc_auc} for t in tried]
        results.append(best)
        say(f"  {candidate.name:<24} fold PR-AUC {best.pr_auc:.3f}  ROC-AUC {best.roc_auc:.3f}  "
            f"(up to {best.rows:,} rows)  {best.params}")
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
            if r is not base and len(r.fold_pr_auc) == len(base.fold_pr_auc) and r.rows == base.rows
            and all(mine > theirs for mine, theirs in zip(r.fold_pr_auc, base.fold_pr_auc))
        ]
    top = max(r.pr_auc for r in eligible)
    close = [r for r in eligible if r.pr_auc >= top - PR_AUC_TIE]
    return max(close, key=lambda r: (r.roc_auc, r.pr_auc))
