"""The simulator's ground truth, for judging models against the best possible score.

Only evaluation code reads this; no feature may. For a lead still open at age `a` days the
probability of converting within `h` days follows from the simulator's hidden process
(see simulator.leads): a converter converts after an exponential delay, a non-converter
is disqualified after an exponential delay with probability p_disqualify, or stays open.
For a customer still active at time t, the probability of churning within `h` days is
1 - exp(-(cumulative hazard over (t, t + h])) of the hazard in simulator.customers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.warehouse import Connection, land_tables, table_exists
from simulator.customers import cumulative_hazard, hazard_segments
from simulator.leads import TRUTH_TABLES, SimulationConfig

TRUTH_SCHEMA = "sim_truth"


def land_truth(con: Connection, raw_dir: Path) -> dict[str, int]:
    """Replace sim_truth.<table> with the simulator's truth files, when raw_dir holds a simulation."""
    truth_dir = raw_dir / "_truth"
    return land_tables(con, truth_dir, TRUTH_SCHEMA, TRUTH_TABLES) if truth_dir.is_dir() else {}


def conversion_probability(truth: pd.DataFrame, age_days: np.ndarray, horizon_days: float) -> np.ndarray:
    """P(convert in (a, a + h] | still open at a) for each row of `truth` (aligned with age_days)."""
    p = truth["p_convert"].to_numpy()
    mean_c = truth["conversion_mean_days"].to_numpy()
    q = truth["p_disqualify"].to_numpy()
    mean_d = truth["disqualify_mean_days"].to_numpy()
    a = np.clip(np.asarray(age_days, dtype=float), 0, None)
    still_converting = p * np.exp(-a / mean_c)
    converts_in_window = p * (np.exp(-a / mean_c) - np.exp(-(a + horizon_days) / mean_c))
    still_open_otherwise = (1 - p) * (q * np.exp(-a / mean_d) + (1 - q))
    return converts_in_window / (still_converting + still_open_otherwise)


def _truth_of_rows(con: Connection, rows: pd.DataFrame, key: str, table: str, columns_sql: str) -> pd.DataFrame | None:
    """The truth table's columns for each (key, as_of_at) row, in the rows' order; None when the data is not
    simulated or a row's entity has no truth."""
    if not table_exists(con, TRUTH_SCHEMA, table):
        return None
    con.register("wanted", rows[[key, "as_of_at"]].reset_index(drop=True).reset_index())
    try:
        truth = con.execute(f"select wanted.index, wanted.as_of_at, {columns_sql} from wanted join {TRUTH_SCHEMA}.{table} t "
                            f"using ({key}) order by wanted.index").df()
    finally:
        con.unregister("wanted")
    return truth if len(truth) == len(rows) else None


def _days(elapsed: pd.Series) -> np.ndarray:
    """Elapsed times in days (computed here, so the SQL is the same on every engine)."""
    return (pd.to_timedelta(elapsed).dt.total_seconds() / 86400.0).to_numpy()


def lead_truth_for_rows(con: Connection, rows: pd.DataFrame, horizon_days: int) -> np.ndarray | None:
    """Ground-truth probabilities for (lead_id, as_of_at) rows, or None when the data is not simulated."""
    truth = _truth_of_rows(con, rows, "lead_id", "lead_truth",
                           "t.p_convert, t.conversion_mean_days, t.p_disqualify, t.disqualify_mean_days, t.created_at")
    return None if truth is None else conversion_probability(truth, _days(truth.as_of_at - truth.created_at),
                                                             horizon_days)


def churn_probability(truth: pd.DataFrame, as_of_day: np.ndarray, horizon_days: float) -> np.ndarray:
    """P(churn in (t, t + h] | active at t), t in days since the simulation start."""
    edges, rates = hazard_segments(
        truth["start_day"].to_numpy(), truth["decline_at_day"].to_numpy(), truth["decline"].to_numpy(),
        truth["h0"].to_numpy(), truth["contract_multiplier"].to_numpy(), truth["csm_multiplier"].to_numpy(),
    )
    t = np.asarray(as_of_day, dtype=float)
    return 1.0 - np.exp(-cumulative_hazard(edges, rates, t, t + horizon_days))


def customer_truth_for_rows(con: Connection, rows: pd.DataFrame, horizon_days: int) -> np.ndarray | None:
    """Ground-truth churn probabilities for (account_id, as_of_at) rows, or None when not simulated."""
    truth = _truth_of_rows(con, rows, "account_id", "customer_truth",
                           "t.start_day, t.decline_at_day, t.decline, t.h0, t.contract_multiplier, t.csm_multiplier")
    start = pd.Timestamp(SimulationConfig().start)
    return None if truth is None else churn_probability(truth, _days(truth.as_of_at - start), horizon_days)


def truth_for_rows(con: Connection, entity_key: str, rows: pd.DataFrame, horizon_days: int) -> np.ndarray | None:
    """The ground truth for a model's rows, by the entity it scores; None when the data is not simulated.
    Training takes it as its optional `truth` hook (ml.train.TruthHook): ml never imports the simulator."""
    if entity_key == "lead_id":
        return lead_truth_for_rows(con, rows, horizon_days)
    if entity_key == "account_id":
        return customer_truth_for_rows(con, rows, horizon_days)
    return None
