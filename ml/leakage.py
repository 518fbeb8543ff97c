"""Leakage audit: before training, every candidate column is checked on evidence; near-certain leaks are
excluded, suspicious columns are warned about with the model's figures with and without them.

Excluded (near-certain), each with its evidence in ml.leakage_audit:
- an identifier: unique per row (at best noise, at worst a proxy for when the row was created);
- a near-perfect single predictor: out-of-fold single-column ROC-AUC >= 0.95; real signals are rarely that
  clean, columns written after the outcome often are;
- filled for one class only: "is this column filled?" alone separates the classes (ROC-AUC >= 0.90), as a field
  that sales fill in only for won deals does;
- a one-class value: some value (or blankness) whose rows come almost only from one class — its other-class rows
  are at most 2% of what the base rate predicts, at least 10 were expected, and it covers at least 5% of its
  class — as a "closed by ..." tag does;
- filled only once the outcome is known: blank on (almost) every row whose outcome is still open, filled on
  at least half the closed ones (given open rows: a flat export's open deals);
- declared known only after the outcome, or (flat exports only, where no event time can prove otherwise) named
  like a post-outcome field: status, stage, tags, quality, grade, profile, a vendor's post-contact score or
  index, last activity, converted, won/lost, churn, cancelled, close or closed.

Warned (suspicious, kept unless dropped): a dominant column — its single-column ROC-AUC is at least 0.75 and
0.10 above every other column's; or without it a quick model loses at least 30% of its lift over chance (and at
least 0.05 ROC-AUC); or it is the strongest single column and leaving it out costs the quick model at least
0.03 ROC-AUC and three times what leaving out any other of the three strongest costs. A measurement taken during the outcome itself (the length of the call that decides it)
or a value computed from the outcome's own session looks like this: strong, but not perfect.

What the audit cannot prove: a column that is honestly strong and one written after the outcome can look
alike. Event times settle it where they exist (the mart path builds every feature as of its date); a flat
export has none, so there the audit's word is evidence, not proof.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from core.outputs import ensure_outputs, output_tables
from core.warehouse import delete_rows
from ml.metrics import ranked_roc_auc, text_codes

NEAR_PERFECT_AUC = 0.95
ONE_CLASS_FILL_AUC = 0.90
ONE_CLASS_VALUE_OTHER_SHARE = 0.02  # other-class rows of the value, as a share of those the base rate predicts
ONE_CLASS_VALUE_MIN_EXPECTED = 10.0
ONE_CLASS_VALUE_MIN_COVERAGE = 0.05
DOMINANT_AUC, DOMINANT_GAP = 0.75, 0.10
LIFT_LOSS_SHARE, LIFT_LOSS_MIN = 0.30, 0.05
TOP_LOSS_MIN, TOP_LOSS_RATIO, MIN_OTHER_LOSS = 0.03, 3.0, 0.005
MIN_OPEN_ROWS, OPEN_FILL_MAX, CLOSED_FILL_MIN = 30, 0.02, 0.50  # filled only once the outcome is known
DOMINANCE_CANDIDATES = 3  # the strongest single columns are refitted without, one at a time
POST_OUTCOME_NAME = re.compile(
    r"(^|_)(status|stage|tags?|quality|grade|profile|asymmetrique|last_activity|last_notable_activity|notable|"
    r"converted|conversion|won|lost|outcome|result|churn(ed)?|cancel(led|ation)?|close[ds]?)(_|$)"
)
EXCLUDED, WARNED = "excluded", "warned"


def _folded(auc: float) -> float:
    return float(max(auc, 1 - auc))


def single_column_auc(values: pd.Series, y: np.ndarray, seed: int = 7) -> float:
    """Out-of-fold ROC-AUC of one column alone (categories by their out-of-fold positive rate), folded to >= 0.5."""
    if values.nunique(dropna=False) < 2:
        return 0.5
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        x = values.astype(float).fillna(values.astype(float).median()).to_numpy()
    else:
        codes, labels = text_codes(values)
        x = np.zeros(len(values))
        prior = y.mean()
        for train, held in StratifiedKFold(5, shuffle=True, random_state=seed).split(codes, y):
            positives = np.bincount(codes[train], weights=y[train], minlength=len(labels))
            rows = np.bincount(codes[train], minlength=len(labels))
            # a category the other folds never saw gets the prior: (0 + 10 prior) / (0 + 10)
            x[held] = ((positives + 10 * prior) / (rows + 10))[codes[held]]
    return _folded(ranked_roc_auc(y, x))


def _filled(values: pd.Series) -> np.ndarray:
    """Per row: the value is there (not missing, not blank text)."""
    filled = values.notna().to_numpy(copy=True)
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values):
        codes, uniques = pd.factorize(values)
        blank = np.array([isinstance(v, str) and not v.strip() for v in uniques], dtype=bool)
        filled &= ~np.where(codes >= 0, blank[np.maximum(codes, 0)] if len(blank) else False, False)
    return filled


def fill_evidence(values: pd.Series, y: np.ndarray) -> tuple[float, float, float]:
    """(fill rate among positives, among negatives, ROC-AUC of "is filled" alone, folded)."""
    filled = _filled(values)
    positive, negative = filled[y == 1], filled[y == 0]
    auc = _folded(ranked_roc_auc(y, filled)) if 0 < filled.sum() < len(filled) else 0.5
    return float(positive.mean()), float(negative.mean()), auc


@dataclass(frozen=True)
class OneClassValue:
    value: str
    label: int  # the class its rows come from
    rows: int
    other_rows: int  # rows of the other class
    other_expected: float  # other-class rows the base rate predicts for this many rows
    coverage: float  # share of its class's rows that carry the value

    def describe(self) -> str:
        return (f"value {self.value!r} occurs almost only with label {self.label} ({self.rows:,} rows, "
                f"{self.other_rows} of the other class where {self.other_expected:.0f} were expected; "
                f"{self.coverage:.0%} of its class)")


def one_class_value(values: pd.Series, y: np.ndarray) -> OneClassValue | None:
    """The value whose rows come most nearly from one class only, if any meets the thresholds above."""
    codes, labels = text_codes(values)
    counts = pd.DataFrame({"sum": np.bincount(codes, weights=y, minlength=len(labels)).astype(np.asarray(y).dtype),
                           "count": np.bincount(codes, minlength=len(labels))},
                          index=pd.Index(labels, name="value")).sort_index()
    if len(counts) < 2:
        return None
    base = y.mean()
    found = []
    for label, other_rate, class_rows in ((1, 1 - base, y.sum()), (0, base, len(y) - y.sum())):
        same = counts["sum"] if label == 1 else counts["count"] - counts["sum"]
        other = counts["count"] - same
        expected = counts["count"] * other_rate
        ok = ((expected >= ONE_CLASS_VALUE_MIN_EXPECTED) & (other <= ONE_CLASS_VALUE_OTHER_SHARE * expected)
              & (same >= ONE_CLASS_VALUE_MIN_COVERAGE * class_rows))
        for value in counts.index[ok.to_numpy()]:
            found.append(OneClassValue(str(value), label, int(counts.at[value, "count"]), int(other[value]),
                                       float(expected[value]), float(same[value] / max(class_rows, 1))))
    return max(found, key=lambda v: v.coverage) if found else None


def audit(frame: pd.DataFrame, y: np.ndarray, columns: list[str], check_names: bool,
          after_outcome: tuple[str, ...] = (), open_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per column: the evidence, the level (excluded / warned / None) and the reasons. `open_rows`, rows
    whose outcome is not known yet, show which columns are filled only once it is."""
    rows = []
    has_open = open_rows is not None and len(open_rows) >= MIN_OPEN_ROWS
    for column in columns:
        values = frame[column]
        auc = single_column_auc(values, y)
        fill_positive, fill_negative, fill_auc = fill_evidence(values, y)
        fill_open = float(_filled(open_rows[column]).mean()) if has_open else float("nan")
        fill_closed = float(_filled(values).mean())
        value = one_class_value(values, y)
        reasons = []
        # A continuous measurement may well differ on every row; an id-like column (text, integers) must not.
        id_like = not pd.api.types.is_float_dtype(values)
        if id_like and values.nunique(dropna=True) == len(frame) and len(frame) > 50:
            reasons.append("an identifier (unique per row), not a signal")
        if auc >= NEAR_PERFECT_AUC:
            reasons.append(f"near-perfect single predictor (ROC-AUC {auc:.3f})")
        if fill_auc >= ONE_CLASS_FILL_AUC:
            reasons.append(f"filled for one class only (filled on {fill_positive:.0%} of positives, "
                           f"{fill_negative:.0%} of negatives; ROC-AUC of being filled {fill_auc:.3f})")
        if value is not None:
            reasons.append(value.describe())
        if has_open and fill_open <= OPEN_FILL_MAX and fill_closed >= CLOSED_FILL_MIN:
            reasons.append(f"filled only once the outcome is known (on {fill_open:.0%} of the open rows, "
                           f"{fill_closed:.0%} of the closed ones)")
        if column in after_outcome:
            reasons.append("declared known only after the outcome")
        if check_names and POST_OUTCOME_NAME.search(column):
            reasons.append("looks filled in after the outcome (its name)")
        rows.append({"column_name": column, "single_column_auc": auc, "fill_rate_positive": fill_positive,
                     "fill_rate_negative": fill_negative, "fill_auc": fill_auc, "fill_rate_open": fill_open,
                     "one_class_value": value.value if value else None,
                     "level": EXCLUDED if reasons else None, "flagged_reason": "; ".join(reasons) or None,
                     "auc_with": np.nan, "auc_without": np.nan})
    return pd.DataFrame(rows)


def warn_dominant(report: pd.DataFrame, model_auc: Callable[[list[str]], float] | None) -> pd.DataFrame:
    """Mark dominant columns among those not excluded as warned, with the evidence: the single-column gap and
    (given `model_auc(columns)`, a quick model's held-out ROC-AUC on those columns) the AUC without each of the
    strongest single columns."""
    report = report.copy()
    kept = report[report.level.isna()].sort_values("single_column_auc", ascending=False)
    if len(kept) < 2:
        return report
    reasons: dict[str, list[str]] = {}
    aucs, top = kept.single_column_auc.to_numpy(), kept.column_name.iloc[0]
    if aucs[0] >= DOMINANT_AUC and aucs[0] - aucs[1] >= DOMINANT_GAP:
        reasons.setdefault(top, []).append(f"dominant single predictor (ROC-AUC {aucs[0]:.3f}; the next column "
                                           f"{aucs[1]:.3f})")
    if model_auc is not None:
        columns = list(kept.column_name)
        with_all = model_auc(columns)
        losses = {}
        for column in columns[:DOMINANCE_CANDIDATES]:
            without = model_auc([c for c in columns if c != column])
            report.loc[report.column_name == column, ["auc_with", "auc_without"]] = [with_all, without]
            losses[column] = with_all - without
        lift = with_all - 0.5
        for column, loss in losses.items():
            if lift > 0 and loss >= LIFT_LOSS_MIN and loss / lift >= LIFT_LOSS_SHARE:
                reasons.setdefault(column, []).append(
                    f"without it the model loses {loss / lift:.0%} of its lift "
                    f"(ROC-AUC {with_all:.3f} with, {with_all - loss:.3f} without)")
        others = max([v for c, v in losses.items() if c != top] + [MIN_OTHER_LOSS])
        if losses.get(top, 0) >= TOP_LOSS_MIN and losses[top] >= TOP_LOSS_RATIO * others and top not in reasons:
            reasons.setdefault(top, []).append(
                f"the strongest single column (ROC-AUC {aucs[0]:.3f}) carries the model: ROC-AUC {with_all:.3f} with "
                f"it, {with_all - losses[top]:.3f} without, at least {TOP_LOSS_RATIO:.0f}x what leaving out any "
                "other strong column costs")
    for column, why in reasons.items():
        index = report.index[report.column_name == column][0]
        report.loc[index, "level"] = WARNED
        report.loc[index, "flagged_reason"] = "; ".join(why) + ": check that it is known before the outcome"
    return report


def decide(report: pd.DataFrame, keep: set[str], drop: set[str]) -> pd.DataFrame:
    """is_excluded: excluded-level columns unless kept by request, and warned or any other columns dropped by
    request."""
    report = report.copy()
    report["is_excluded"] = (((report.level == EXCLUDED) & ~report.column_name.isin(keep))
                             | report.column_name.isin(drop))
    dropped = report.column_name.isin(drop) & report.flagged_reason.isna()
    report.loc[dropped, "flagged_reason"] = "dropped by request"
    return report


def record_audit(con, model_name: str, audited_at, report: pd.DataFrame) -> None:
    """Replace a model's rows in ml.leakage_audit with this audit (its columns: models/outputs/_outputs__sources.yml)."""
    ensure_outputs(con, "ml", "leakage_audit")
    delete_rows(con, "ml.leakage_audit", "model_name = ?", [model_name])
    names = [c.name for c in output_tables()["ml.leakage_audit"].columns]
    con.register("audit_rows", report.assign(model_name=model_name, audited_at=audited_at)
                 .reindex(columns=names))
    con.execute(f"insert into ml.leakage_audit ({', '.join(names)}) select {', '.join(names)} from audit_rows")
    con.unregister("audit_rows")


def excluded_and_warned(report: pd.DataFrame) -> tuple[list[str], list[str]]:
    return (list(report.loc[report.is_excluded, "column_name"]),
            list(report.loc[(report.level == WARNED) & ~report.is_excluded, "column_name"]))
