"""The model report: one self-contained HTML file per trained model (inline SVG, no scripts, no network).

Why hand-drawn SVG rather than a plotting library: the report must stay one offline file that opens anywhere
and diffs as text. matplotlib would add a large dependency to draw seven line and bar charts and embed them as
base64 images; the interactive libraries need a script bundle inlined or fetched. The charts here are a few
dozen lines of plain SVG, and tests count their plotted points.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from ml.metrics import calibration_points

WIDTH, HEIGHT, PAD = 420, 300, 46
COLOURS = ("#1f6feb", "#d1495b", "#2a9d8f", "#8d6a9f", "#e9a03b")


def _scale(value: float, lo: float, hi: float, out_lo: float, out_hi: float) -> float:
    if hi == lo:
        return (out_lo + out_hi) / 2
    return out_lo + (value - lo) * (out_hi - out_lo) / (hi - lo)


def _thin(xs: np.ndarray, ys: np.ndarray, limit: int = 250) -> tuple[np.ndarray, np.ndarray]:
    if len(xs) <= limit:
        return xs, ys
    pick = np.unique(np.linspace(0, len(xs) - 1, limit).astype(int))
    return xs[pick], ys[pick]


def line_chart(title: str, series: list[tuple[str, Any, Any]], x_label: str, y_label: str,
               x_range=(0.0, 1.0), y_range=(0.0, 1.0), diagonal: bool = False) -> str:
    """An SVG line chart; `data-points` counts the plotted points so a test can tell it is not empty."""
    parts, points = [], 0
    x0, x1, y0, y1 = PAD, WIDTH - 12, HEIGHT - PAD, 14
    for tick in np.linspace(0, 1, 6):
        xv = x_range[0] + tick * (x_range[1] - x_range[0])
        yv = y_range[0] + tick * (y_range[1] - y_range[0])
        px, py = _scale(xv, *x_range, x0, x1), _scale(yv, *y_range, y0, y1)
        parts.append(f'<line x1="{px:.1f}" y1="{y0}" x2="{px:.1f}" y2="{y1}" class="grid"/>')
        parts.append(f'<line x1="{x0}" y1="{py:.1f}" x2="{x1}" y2="{py:.1f}" class="grid"/>')
        parts.append(f'<text x="{px:.1f}" y="{y0 + 14}" class="tick" text-anchor="middle">{xv:.2g}</text>')
        parts.append(f'<text x="{x0 - 5}" y="{py + 3:.1f}" class="tick" text-anchor="end">{yv:.2g}</text>')
    if diagonal:
        parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" class="diagonal"/>')
    legend = []
    for i, (label, xs, ys) in enumerate(series):
        xs, ys = _thin(np.asarray(xs, float), np.asarray(ys, float))
        keep = np.isfinite(xs) & np.isfinite(ys)
        xs, ys = xs[keep], ys[keep]
        points += len(xs)
        path = " ".join(f"{_scale(x, *x_range, x0, x1):.1f},{_scale(y, *y_range, y0, y1):.1f}" for x, y in zip(xs, ys))
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        legend.append(f'<tspan fill="{colour}">&#9632; {html.escape(label)}</tspan>')
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{HEIGHT - 8}" class="axis" text-anchor="middle">{html.escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{(y0 + y1) / 2}" class="axis" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(y0 + y1) / 2})">{html.escape(y_label)}</text>')
    parts.append(f'<text x="{x0 + 8}" y="{y1 + 12}" class="legend">{" ".join(legend)}</text>')
    return _figure(title, parts, points)


def bar_chart(title: str, labels: list[str], values: list[float], x_label: str) -> str:
    """Horizontal bars, largest first."""
    height = max(HEIGHT, 22 * len(labels) + 40)
    top = max([abs(v) for v in values] + [1e-12])
    parts = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 12 + i * 22
        width = _scale(max(value, 0), 0, top, 0, WIDTH - 190)
        parts.append(f'<text x="150" y="{y + 13}" class="tick" text-anchor="end">{html.escape(label[:26])}</text>')
        parts.append(f'<rect x="155" y="{y}" width="{width:.1f}" height="16" fill="{COLOURS[0]}"/>')
        parts.append(f'<text x="{160 + width:.1f}" y="{y + 13}" class="tick">{value:.3g}</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{height - 8}" class="axis" text-anchor="middle">{html.escape(x_label)}</text>')
    return _figure(title, parts, len(values), height)


def _figure(title: str, parts: list[str], points: int, height: int = HEIGHT) -> str:
    return (
        f'<figure><figcaption>{html.escape(title)}</figcaption>'
        f'<svg class="chart" data-points="{points}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg></figure>'
    )


def table(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, (float, np.floating)):
                text = "" if np.isnan(value) else float_format.format(value)
            else:
                text = html.escape(str(value))
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1320px; color: #1d2733; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 17px; margin-top: 28px; }
.sub { color: #5b6b7c; } .charts { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; border: 1px solid #dfe5ec; border-radius: 6px; padding: 6px; background: #fff; }
figcaption { font-weight: 600; margin: 2px 4px 4px; }
.grid { stroke: #eef1f4; } .diagonal { stroke: #9aa5b1; stroke-dasharray: 4 4; }
.tick { font-size: 10px; fill: #5b6b7c; } .axis { font-size: 11px; fill: #33404d; } .legend { font-size: 11px; }
table { border-collapse: collapse; margin: 6px 0 12px; } th, td { border: 1px solid #dfe5ec; padding: 4px 8px; text-align: right; }
th { background: #f3f6f9; } td:first-child, th:first-child { text-align: left; }
.winner { font-weight: 700; }
"""


def write_report(path: Path, context: dict[str, Any]) -> Path:
    """Render the report from what training measured (see ml.train for the context's keys)."""
    c = context
    charts = [
        line_chart("ROC curve (test period)", c["roc"], "false positive rate", "true positive rate", diagonal=True),
        line_chart("Precision-recall curve (test period)", c["pr"], "recall", "precision"),
        line_chart("Calibration (test period)", c["calibration"], "mean predicted probability", "observed rate",
                   x_range=c["calibration_range"], y_range=c["calibration_range"], diagonal=True),
        line_chart("Cumulative gain by decile (test period)", c["gain"], "share of rows, highest scores first",
                   "share of positives captured", diagonal=True),
        line_chart("Lift by decile (test period)", c["lift"], "decile (1 = highest scores)", "lift",
                   x_range=(1, 10), y_range=(0, max(1.0, c["max_lift"]))),
        line_chart("Precision, recall and share flagged vs threshold (test period)", c["threshold_series"],
                   "threshold", "rate", x_range=c["threshold_range"]),
        bar_chart("Permutation importance on the test period (drop in PR-AUC)", c["importance_labels"],
                  c["importance_values"], "mean drop in PR-AUC when the column is shuffled"),
    ]
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(c['model_version'])}</title><style>{STYLE}</style></head><body>
<h1>{html.escape(c['model_name'])}: {html.escape(c['model_version'])}</h1>
<p class="sub">Winner <b>{html.escape(c['algorithm'])}</b> by the rule: {html.escape(c['selection_rule'])}.
Label horizon {c['horizon_days']} days. {html.escape(c['promotion'])}.</p>
<h2>Data windows</h2>{table(c['periods'])}
<h2>Out-of-time test metrics</h2>{table(c['summary'])}
<h2>Charts</h2><div class="charts">{''.join(charts)}</div>
<h2>Leakage audit (columns excluded or warned about)</h2>{table(c['audit']) if len(c['audit']) else '<p>Nothing flagged.</p>'}
<h2>Candidates (rolling out-of-time folds with embargo)</h2>{table(c['candidates'])}
<h2>Metrics by segment (test period)</h2>{table(c['segments'])}
<h2>Deciles (test period)</h2>{table(c['deciles'])}
<p class="sub">Threshold policy: {html.escape(c['threshold_policy'])}; threshold {c['threshold']:.4f}.
Probabilities are calibrated on the validation period, which the model did not train on.</p>
</body></html>"""
    path.write_text(body, encoding="utf-8")
    return path


@dataclass
class ReportInputs:
    """What a training run hands to its report."""

    spec: Any  # ml.features.ModelSpec
    bundle: Any  # ml.registry.ModelBundle
    winner: str
    results: list  # ml.selection.CandidateResult, one per candidate
    evaluation: Any  # ml.train.Evaluation
    truth_metrics: dict | None
    selection_rule: str
    baseline: str
    audit: pd.DataFrame | None = None  # the leakage audit (ml.leakage)


def _curves(test_y: np.ndarray, test_proba: dict[str, np.ndarray]) -> tuple[list, list]:
    roc, pr = [], []
    for name, proba in test_proba.items():
        fpr, tpr, _ = roc_curve(test_y, proba)
        precision, recall, _ = precision_recall_curve(test_y, proba)
        roc.append((name, fpr, tpr))
        pr.append((name, recall, precision))
    return roc, pr


def _summary_table(r: ReportInputs) -> pd.DataFrame:
    ev = r.evaluation
    return pd.DataFrame({
        "metric": list(ev.winner_metrics),
        f"winner ({r.winner})": list(ev.winner_metrics.values()),
        f"baseline ({r.baseline})": [ev.baseline_metrics[k] for k in ev.winner_metrics],
        **({"simulator ground truth": [r.truth_metrics[k] for k in ev.winner_metrics]} if r.truth_metrics else {}),
    })


def _candidates_table(r: ReportInputs) -> pd.DataFrame:
    return pd.DataFrame([
        {"candidate": c.name + (" (winner)" if c.name == r.winner else ""), "params": str(c.params),
         "fold PR-AUC": c.pr_auc, "fold ROC-AUC": c.roc_auc,
         "per fold PR-AUC": ", ".join(f"{v:.3f}" for v in c.fold_pr_auc),
         "rows per fold fit (at most)": c.rows}
        for c in sorted(r.results, key=lambda c: -c.pr_auc)
    ])


def write_model_report(path: Path, r: ReportInputs) -> Path:
    """The report of one training run, from what training measured."""
    ev, winner_proba = r.evaluation, r.evaluation.test_proba[r.winner]
    roc, pr = _curves(ev.test_y, ev.test_proba)
    calib = calibration_points(ev.test_y, winner_proba)
    top = float(max(calib.predicted.max(), calib.observed.max(), 0.05))
    deciles, curve, top_features = ev.deciles, ev.curve, ev.importances.head(15)
    segments = ev.segments[["segment", "rows", "positive_rate", "mean_predicted", "roc_auc", "pr_auc"]].rename(
        columns={"positive_rate": "positive rate", "mean_predicted": "mean predicted", "roc_auc": "ROC-AUC",
                 "pr_auc": "PR-AUC"}) if len(ev.segments) else ev.segments
    periods = r.bundle.metadata["periods"]
    return write_report(path, {
        "model_name": r.spec.name, "model_version": r.bundle.model_version, "algorithm": r.winner,
        "selection_rule": r.selection_rule, "horizon_days": r.bundle.metadata["horizon_days"],
        "promotion": r.bundle.metadata["promotion"],
        "periods": pd.DataFrame([{"period": k.replace("_", " "), "date": v} for k, v in periods.items()]),
        "summary": _summary_table(r), "roc": roc, "pr": pr,
        "calibration": [(r.winner, calib.predicted, calib.observed)], "calibration_range": (0.0, min(1.0, top * 1.1)),
        "gain": [(r.winner, np.r_[0.0, deciles.decile / 10], np.r_[0.0, deciles.cumulative_gain])],
        "lift": [(r.winner, deciles.decile, deciles.lift)], "max_lift": float(np.nanmax(deciles.lift)) * 1.1,
        "threshold_series": [("precision", curve.threshold, curve.precision), ("recall", curve.threshold, curve.recall),
                             ("share flagged", curve.threshold, curve.share_flagged)],
        "threshold_range": (float(curve.threshold.min()), float(curve.threshold.max())),
        "importance_labels": list(top_features.index), "importance_values": [float(v) for v in top_features.values],
        "candidates": _candidates_table(r), "segments": segments, "deciles": deciles,
        "threshold_policy": r.bundle.metadata["threshold_policy"], "threshold": r.bundle.threshold,
        "audit": _audit_table(r.audit),
    })


def _audit_table(audit: pd.DataFrame | None) -> pd.DataFrame:
    """The columns the leakage audit excluded or warned about, with its evidence."""
    columns = ["column", "level", "left out", "single-column ROC-AUC", "model ROC-AUC with", "without", "why"]
    if audit is None or audit.flagged_reason.isna().all():
        return pd.DataFrame(columns=columns)
    flagged = audit[audit.flagged_reason.notna()]
    return pd.DataFrame({"column": flagged.column_name, "level": flagged.level.fillna(""),
                         "left out": flagged.is_excluded.map({True: "yes", False: "no"}),
                         "single-column ROC-AUC": flagged.single_column_auc, "model ROC-AUC with": flagged.auc_with,
                         "without": flagged.auc_without, "why": flagged.flagged_reason}, columns=columns)
