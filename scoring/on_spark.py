"""Scoring on Spark's executors: the newest snapshot is explained where its rows are (`mapInPandas`), with the
fitted model broadcast once, by the same function that scores on the driver (scoring/explain.py). Only the
results come back to the driver: per row the probability, the sub-scores, the raising reasons in words and the
reason rows (as JSON text, one list per row)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ml.dataset import latest_snapshot_sql
from ml.features import ModelSpec
from ml.registry import ModelBundle
from scoring.explain import Explained, explain, sub_score_columns

REASON_FIELDS = ("direction", "rank", "factor", "reason", "contribution")


def _explained_batches(bundle_on_executors, spec: ModelSpec, sub_scores: list[str]):
    """The function each executor runs on its batches of snapshot rows."""
    def explain_batches(batches):
        bundle = bundle_on_executors.value
        for batch in batches:
            batch = batch.reset_index(drop=True)
            explained = explain(bundle, spec, batch, lambda _message: None)
            reasons: dict[str, list] = {}
            rows = explained.reasons
            for entity, *fields in zip(rows["entity_id"], *(rows[f].tolist() for f in REASON_FIELDS)):
                reasons.setdefault(entity, []).append(fields)
            yield pd.DataFrame({
                "entity": batch[spec.entity_key], "probability": explained.probability,
                **{f"sub_{name}": explained.sub_scores[name] for name in sub_scores},
                "text": explained.text,
                "reasons": [json.dumps(reasons.get(entity, [])) for entity in batch[spec.entity_key]],
            })
    return explain_batches


def explain_on_spark(con, bundle: ModelBundle, spec: ModelSpec, snapshot: pd.DataFrame, say) -> Explained:
    """The snapshot's rows explained on the executors, in the order of `snapshot` (the driver's copy of the same
    rows, which playbooks, segments and drift read)."""
    sub_scores = list(sub_score_columns(spec))
    schema = ", ".join(["entity string", "probability double", *(f"sub_{name} double" for name in sub_scores),
                        "text string", "reasons string"])
    shared = con.session.sparkContext.broadcast(bundle)
    try:
        rows = con.session.sql(latest_snapshot_sql(spec)).mapInPandas(
            _explained_batches(shared, spec, sub_scores), schema).toPandas()
    finally:
        shared.unpersist()
    say(f"scored {len(rows):,} rows on Spark's executors")
    rows = rows.set_index("entity").loc[snapshot[spec.entity_key].to_numpy()]
    reason_lists = [json.loads(text) for text in rows["reasons"]]
    reasons = pd.DataFrame([[entity, *fields] for entity, listed in zip(rows.index, reason_lists) for fields in listed],
                           columns=["entity_id", *REASON_FIELDS])
    reasons["rank"] = reasons["rank"].astype(np.int64)
    reasons["contribution"] = reasons["contribution"].astype(float)
    return Explained(rows["probability"].to_numpy(), {name: rows[f"sub_{name}"].to_numpy() for name in sub_scores},
                     list(rows["text"]), reasons)
