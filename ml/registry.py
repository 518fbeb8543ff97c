"""Model registry: artifacts on disk with their metadata, one row per model in `ml.model_registry`,
and every metric in `ml.model_metrics`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from core.config import Settings
from core.outputs import ensure_outputs
from core.warehouse import Connection, is_spark, table_exists, transaction, update_rows
from ml.leakage import record_audit
from ml.pipeline import in_row_chunks

# A warehouse made before horizon_days became optional (the columns themselves: _outputs__sources.yml)
REGISTRY_MIGRATION = "alter table ml.model_registry alter column horizon_days drop not null"


@dataclass
class ModelBundle:
    """What scoring needs: the fitted, calibrated estimator and the decisions made at training time."""

    model_version: str
    spec: Any  # ml.features.ModelSpec
    estimator: Any
    threshold: float
    tier_cutoffs: dict[str, float]
    metadata: dict[str, Any]
    baseline: dict[str, Any] | None = None  # a typical training row, for explanations

    def predict_proba(self, frame: pd.DataFrame):
        # in pieces: models registered before their pipelines did so themselves score large frames as fast
        return in_row_chunks(lambda part: self.estimator.predict_proba(self.spec.model_input(part))[:, 1], frame)

    def as_estimator(self) -> BundleClassifier:
        return BundleClassifier(self)


class BundleClassifier(ClassifierMixin, BaseEstimator):
    """A registered model as a scikit-learn classifier: `predict_proba(frame)` on a frame of mart columns (extra
    columns are ignored) gives the calibrated probabilities of [not converting/churning, converting/churning];
    `predict` applies the threshold chosen at training. It is fitted already; refit with `scorehouse train`."""

    def __init__(self, bundle: ModelBundle | None = None) -> None:
        self.bundle = bundle

    @property
    def classes_(self) -> np.ndarray:
        return np.array([False, True])

    @property
    def feature_names_in_(self) -> np.ndarray:
        return np.asarray(self.bundle.spec.features, dtype=object)

    def __sklearn_is_fitted__(self) -> bool:
        return self.bundle is not None

    def fit(self, X, y=None):
        raise NotImplementedError("a registered model is refitted by `scorehouse train`, which records it")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.bundle.spec.features if c not in X.columns]
        if missing:
            raise ValueError(f"the frame lacks mart columns the model needs: {', '.join(missing)}")
        positive = self.bundle.predict_proba(X)
        return np.column_stack([1 - positive, positive])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X)[:, 1] >= self.bundle.threshold


def ensure_registry(con: Connection) -> None:
    ensure_outputs(con, "ml", "model_registry", "model_metrics", "threshold_curve")
    if not is_spark(con):  # Spark's tables take no not-null constraints, so there is nothing to drop
        con.execute(REGISTRY_MIGRATION)


def save_bundle(settings: Settings, bundle: ModelBundle) -> Path:
    folder = settings.models_dir / bundle.model_version
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.joblib"
    joblib.dump(bundle, path)
    (folder / "metadata.json").write_text(json.dumps(bundle.metadata, indent=2, default=str))
    return path


@dataclass
class Registration:
    """A trained model with everything recorded beside it."""

    bundle: ModelBundle
    artifact: Path
    row: dict[str, Any]  # registry columns measured by training
    metrics: list[tuple[str, str, str, float]]  # (split, segment, metric, value)
    curve: pd.DataFrame  # the threshold curve
    promote: bool
    audit: pd.DataFrame | None = None  # the leakage audit of the model's candidate columns


def register(con: Connection, entry: Registration) -> None:
    """Record the model, its metrics, threshold curve and leakage audit; if promoted, make it the active one for
    its name. One transaction: readers never see a model without its metrics or two active models."""
    ensure_registry(con)
    bundle = entry.bundle
    record = {
        "model_version": bundle.model_version,
        "model_name": bundle.spec.name,
        "artifact_path": str(entry.artifact),
        "threshold": bundle.threshold,
        "metadata_json": json.dumps(bundle.metadata, default=str),
        **entry.row,
    }
    columns = list(record)
    metric_frame = pd.DataFrame(entry.metrics, columns=["split", "segment", "metric", "value"])
    metric_frame.insert(0, "model_version", bundle.model_version)
    curve = entry.curve.assign(model_version=bundle.model_version)
    with transaction(con):
        con.execute(
            f"insert into ml.model_registry ({', '.join(columns)}, is_active) "
            f"values ({', '.join('?' for _ in columns)}, ?)",
            [record[c] for c in columns] + [entry.promote],
        )
        if entry.promote:  # after the insert: on Spark (no transactions) a failure between leaves two active
            # versions, of which the newest scores (load_active), never none
            update_rows(con, "ml.model_registry", "is_active", "false", "model_name = ? and model_version <> ?",
                        [bundle.spec.name, bundle.model_version])
        con.register("new_metrics", metric_frame)
        con.execute("insert into ml.model_metrics select model_version, split, segment, metric, value from new_metrics")
        con.register("new_curve", curve)
        con.execute(
            "insert into ml.threshold_curve select model_version, split, threshold, precision, recall, f1, share_flagged "
            "from new_curve"
        )
        if entry.audit is not None:
            record_audit(con, bundle.spec.name, record.get("trained_at"), entry.audit)
    con.unregister("new_metrics")
    con.unregister("new_curve")


def active_report(con: Connection, model_name: str) -> Path:
    rows = con.execute(
        "select report_path from ml.model_registry where model_name = ? and is_active order by trained_at desc",
        [model_name]
    ).fetchall() if table_exists(con, "ml", "model_registry") else []
    if not rows or not rows[0][0]:
        raise LookupError(f"no active '{model_name}' model with a report: run `scorehouse train` first")
    return Path(rows[0][0])


def has_active(con: Connection, model_name: str) -> bool:
    """Whether a version of the model is active (scoring needs one)."""
    return table_exists(con, "ml", "model_registry") and bool(con.execute(
        "select 1 from ml.model_registry where model_name = ? and is_active limit 1", [model_name]).fetchall())


def load_active(con: Connection, model_name: str) -> ModelBundle:
    rows = con.execute(
        "select artifact_path from ml.model_registry where model_name = ? and is_active "
        "order by trained_at desc limit 1",
        [model_name],
    ).fetchall() if table_exists(con, "ml", "model_registry") else []
    if not rows:
        raise LookupError(f"no active '{model_name}' model in ml.model_registry: run `scorehouse train` first")
    path = Path(rows[0][0])
    if not path.exists():
        raise FileNotFoundError(f"model artifact {path} listed in ml.model_registry is missing")
    return joblib.load(path)
