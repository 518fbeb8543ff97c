"""Lead segments: k-means on scaled fit and engagement columns, k chosen by silhouette, each segment
described in plain words and with its historical conversion rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SEGMENT_COLUMNS = {
    "pricing_page_views_30d": "pricing visits (30 days)",
    "demo_page_views_30d": "demo page views (30 days)",
    "web_sessions_30d": "web sessions (30 days)",
    "emails_opened_30d": "emails opened (30 days)",
    "meetings_90d": "meetings (90 days)",
    "days_since_last_touch": "days since last activity",
    "days_since_created": "lead age in days",
    "employee_count": "company employees",
}
K_CHOICES = (3, 4, 5, 6)
SAMPLE = 20_000


def segment_leads(snapshot: pd.DataFrame, history: pd.DataFrame, label: str, seed: int):
    """(segment id per snapshot row, profile table, chosen k, silhouette)."""
    columns = list(SEGMENT_COLUMNS)
    prepare = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
    rng = np.random.default_rng(seed)
    fit_rows = snapshot if len(snapshot) <= SAMPLE else snapshot.iloc[rng.choice(len(snapshot), SAMPLE, replace=False)]
    x = prepare.fit_transform(np.log1p(fit_rows[columns].astype(float).clip(lower=0)))
    best = None
    for k in K_CHOICES:
        if len(x) <= k * 5:
            break
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
        score = silhouette_score(x, model.labels_, sample_size=min(len(x), 4_000), random_state=seed)
        if best is None or score > best[1]:
            best = (model, float(score), k)
    if best is None:
        return np.zeros(len(snapshot), int), pd.DataFrame(), 1, float("nan")
    model, silhouette, k = best

    def assign(frame: pd.DataFrame) -> np.ndarray:
        return model.predict(prepare.transform(np.log1p(frame[columns].astype(float).clip(lower=0))))

    labels = assign(snapshot)
    history_labels = assign(history) if len(history) else np.zeros(0, int)
    overall = snapshot[columns].astype(float).mean()
    spread = snapshot[columns].astype(float).std().replace(0, 1)
    profile = []
    for segment in range(k):
        members = snapshot[labels == segment]
        means = members[columns].astype(float).mean()
        z = (means - overall) / spread
        top = z.abs().sort_values(ascending=False).head(3).index
        words = [f"{'higher' if z[c] > 0 else 'lower'} {SEGMENT_COLUMNS[c]} ({means[c]:.1f} vs {overall[c]:.1f} on average)"
                 for c in top]
        past = history[history_labels == segment]
        profile.append({
            "segment_id": segment,
            "leads": len(members),
            "share_of_leads": float(len(members) / max(len(snapshot), 1)),
            "historical_rows": len(past),
            "historical_conversion_rate": float(past[label].mean()) if len(past) else float("nan"),
            "description": "; ".join(words).capitalize(),
        })
    return labels, pd.DataFrame(profile), k, silhouette
