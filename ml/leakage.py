"""Leakage audit: before training, every candidate column is checked, flagged columns are excluded by default.

A column is flagged when
- it is unique per row (an identifier: at best noise, at worst a proxy for when the row was created); or
- alone it predicts the label almost perfectly (out-of-fold single-column ROC-AUC >= 0.95): real
  signals are rarely that clean, columns written after the outcome often are; or
- its name says it is filled in by sales after contact or describes the outcome (status, stage, tags,
  quality or grade, profile, score/index from a vendor's post-contact model, last activity, converted,
  won/lost, churn, cancelled) — only for flat exports, where no event times can prove otherwise.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

NEAR_PERFECT_AUC = 0.95
POST_OUTCOME_NAME = re.compile(
    r"(^|_)(status|stage|tags?|quality|grade|profile|asymmetrique|last_activity|last_notable_activity|notable|"
    r"converted|conversion|won|lost|outcome|result|churn(ed)?|cancel(led|ation)?|closed)(_|$)"
)


def single_column_auc(values: pd.Series, y: np.ndarray, seed: int = 7) -> float:
    """Out-of-fold ROC-AUC of one column alone (categories by their out-of-fold positive rate), folded to >= 0.5."""
    if values.nunique(dropna=False) < 2:
        return 0.5
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        x = values.astype(float).fillna(values.astype(float).median()).to_numpy()
    else:
        text = values.astype(object).where(values.notna(), "(missing)").astype(str).to_numpy()
        x = np.zeros(len(values))
        prior = y.mean()
        for train, held in StratifiedKFold(5, shuffle=True, random_state=seed).split(text, y):
            rates = pd.Series(y[train]).groupby(text[train]).agg(["sum", "count"])
            smoothed = (rates["sum"] + 10 * prior) / (rates["count"] + 10)
            x[held] = pd.Series(text[held]).map(smoothed).fillna(prior).to_numpy()
    auc = roc_auc_score(y, x)
    return float(max(auc, 1 - auc))


def audit(frame: pd.DataFrame, y: np.ndarray, columns: list[str], check_names: bool) -> pd.DataFrame:
    rows = []
    for column in columns:
        auc = single_column_auc(frame[column], y)
        reasons = []
        # A continuous measurement may well differ on every row; an id-like column (text, integers) must not.
        id_like = not pd.api.types.is_float_dtype(frame[column])
        if id_like and frame[column].nunique(dropna=True) == len(frame) and len(frame) > 50:
            reasons.append("an identifier (unique per row), not a signal")
        if auc >= NEAR_PERFECT_AUC:
            reasons.append(f"near-perfect single predictor (ROC-AUC {auc:.3f})")
        if check_names and POST_OUTCOME_NAME.search(column):
            reasons.append("looks filled in after the outcome (its name)")
        rows.append({"column_name": column, "single_column_auc": auc, "flagged_reason": "; ".join(reasons) or None})
    return pd.DataFrame(rows)


AUDIT_DDL = """create schema if not exists ml;
create table if not exists ml.leakage_audit (model_name varchar, audited_at timestamp, column_name varchar,
    single_column_auc double, flagged_reason varchar, is_excluded boolean)"""


def record_audit(con, model_name: str, audited_at, report: pd.DataFrame) -> None:
    """Replace a model's rows in ml.leakage_audit with this audit."""
    con.execute(AUDIT_DDL)
    con.execute("delete from ml.leakage_audit where model_name = ?", [model_name])
    con.register("audit_rows", report.assign(model_name=model_name, audited_at=audited_at))
    con.execute("insert into ml.leakage_audit select model_name, audited_at, column_name, single_column_auc, "
                "flagged_reason, is_excluded from audit_rows")
    con.unregister("audit_rows")
