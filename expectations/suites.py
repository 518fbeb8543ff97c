"""What each Great Expectations suite checks, derived from the source contract and the models' score tables.

The suites themselves live in the file data context (`expectations/gx/expectations/`), written from these
definitions by `scorehouse contract --write`; a test checks that the two agree. Plain data here, so reading it does
not import Great Expectations.

Raw suites check what must hold for the pipeline to make sense — the contract's columns exist, required fields
are (almost always) present, keys are (almost always) unique, and no event is dated after the export (the latest
allowed time is a suite parameter, `latest_event_time`, given at each run) — while single bad rows are left to the
rejects. Score suites are strict: one row per entity, probabilities in [0, 1], valid tiers, a model version on
every row.
"""

from __future__ import annotations

from core.contract import SOURCES
from ml.features import MODELS

MOSTLY = 0.98
LATEST_EVENT_TIME = "latest_event_time"  # the suite parameter: one day after the gate runs

Expectation = tuple[str, dict]  # (expectation type, its kwargs)

# Each model's current score table: its key, probability column, tier column and tiers.
SCORE_TABLES = {spec.score_table: (spec.entity_key, spec.probability_column, spec.tier_column, list(spec.tier_labels))
                for spec in MODELS.values()}


def _raw(source) -> list[Expectation]:
    checks: list[Expectation] = []
    for column in source.columns:
        checks.append(("expect_column_to_exist", {"column": column.name}))
        if column.required:
            checks.append(("expect_column_values_to_not_be_null", {"column": column.name, "mostly": MOSTLY}))
    if source.key in {c.name for c in source.columns}:
        checks.append(("expect_column_values_to_be_unique", {"column": source.key, "mostly": MOSTLY}))
    checks.append(("expect_column_values_to_be_between",
                   {"column": source.event_time, "max_value": {"$PARAMETER": LATEST_EVENT_TIME}}))
    return checks


def _score(table: str) -> list[Expectation]:
    key, probability, tier, tiers = SCORE_TABLES[table]
    return [
        ("expect_column_values_to_not_be_null", {"column": key}),
        ("expect_column_values_to_be_unique", {"column": key}),
        ("expect_column_values_to_be_between", {"column": probability, "min_value": 0.0, "max_value": 1.0}),
        ("expect_column_values_to_be_in_set", {"column": tier, "value_set": tiers}),
        ("expect_column_values_to_not_be_null", {"column": "model_version"}),
        ("expect_column_values_to_be_between", {"column": "score", "min_value": 1.0, "max_value": 99.0}),
    ]


def suite_definitions() -> dict[str, list[Expectation]]:
    """Suite name (`raw.<table>` or `scores.<table>`) -> its expectations, in order."""
    return {**{f"raw.{s.name}": _raw(s) for s in SOURCES}, **{f"scores.{t}": _score(t) for t in SCORE_TABLES}}
