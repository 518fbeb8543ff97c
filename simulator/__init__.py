"""The source simulator: B2B funnel data in the raw shapes real exports have, with a hidden ground truth.

A domain of its own: production code (ml, scoring, expectations, ingest) never imports it; the application
uses it for the demo path and hands its ground truth to training as an optional evaluation hook.
"""

from simulator.leads import TRUTH_TABLES, SimulationConfig, simulate

__all__ = ["TRUTH_TABLES", "SimulationConfig", "simulate"]
