"""Each feature is declared once, in the mart's YAML; the model specs, the factors and the sentences follow it."""

from __future__ import annotations

import pytest
import yaml

import ml.features
from ml.features import CHURN_FACTORS, LEAD_FACTORS, MODELS, declared_features, mart_columns
from scoring.sentences import SENTENCE_COLUMNS, SENTENCES


@pytest.mark.parametrize("key", sorted(MODELS))
def test_a_models_features_are_the_columns_its_mart_declares(key):
    spec = MODELS[key]
    declared = {name: meta for name, meta in mart_columns(spec.mart.split(".")[1]) if meta.get("feature")}
    assert set(spec.features) == set(declared)
    for role in ("numeric", "categorical", "boolean", "target_encoded"):
        assert all(declared[c]["feature"] == role for c in getattr(spec, role))
    assert {c for _, columns in spec.reason_groups for c in columns} == {c for c, m in declared.items() if m.get("factor")}


@pytest.mark.parametrize("factors", [LEAD_FACTORS, CHURN_FACTORS], ids=["lead", "churn"])
def test_every_factor_has_columns_and_a_sentence_reading_model_columns(factors):
    spec = MODELS["lead" if factors is LEAD_FACTORS else "churn"]
    groups = dict(spec.reason_groups)
    assert list(groups) == list(factors)  # every factor has at least one column, in the stated order
    for factor in factors:
        assert factor in SENTENCES
        assert set(SENTENCE_COLUMNS[factor]) <= set(spec.features), factor


def test_a_wrong_declaration_names_the_file_the_mart_and_the_column(tmp_path, monkeypatch):
    marts = tmp_path / "marts.yml"
    marts.write_text(yaml.safe_dump({"models": [{"name": "fct_x", "columns": [
        {"name": "a", "config": {"meta": {"feature": "numeric", "factor": "recency"}}},
        {"name": "b", "config": {"meta": {"feature": "numeric", "factor": "horoscope"}}},
    ]}]}))
    monkeypatch.setattr(ml.features, "MARTS_YAML", marts)
    mart_columns.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"marts.yml: fct_x\.b names factor 'horoscope'"):
            declared_features("fct_x", ("recency",))
        marts.write_text(marts.read_text().replace("horoscope", "recency").replace("feature: numeric\n", "feature: text\n", 1))
        mart_columns.cache_clear()
        with pytest.raises(ValueError, match=r"fct_x\.a has feature role 'text'"):
            declared_features("fct_x", ("recency",))
    finally:
        mart_columns.cache_clear()
