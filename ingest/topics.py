"""Content topics: group web pages into a fixed number of topics by the words in their URL path and title.

TF-IDF over those words, then k-means on the normalised vectors. The topic model is fitted once per
warehouse (the first build, or `scorehouse topics --refit`) and saved beside the models; every later
build applies the saved model unchanged, so a page keeps its topic and a new page lands in the nearest
existing topic. Fitting reads page text only — no lead, no behaviour, no outcome — so it cannot carry
an outcome into a feature. The build turns the page -> topic map into per-lead topic shares, as of each
date, in SQL (int_lead_touch_events, int_lead_engagement_asof).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer

from core.config import CONTENT_TOPIC_COUNT, Settings
from core.outputs import ensure_outputs
from core.warehouse import Connection, replace_contents, table_exists, transaction

TOPIC_COUNT = CONTENT_TOPIC_COUNT
SCHEMA = "content"
_WORDS = re.compile(r"[a-z]{3,}")
_HOST = re.compile(r"^[a-z]+://[^/]+")
_QUERY = re.compile(r"[?#].*$")


# A path segment that is an identifier, not words: a run of hex digits (hashes, UUID parts) or any token that
# mixes letters and digits. Its letters are fragments ("a3f9bcde" holds "bcde"), and topics named by
# fragments would group pages by chance.
_IDENTIFIER = re.compile(r"^(?:[0-9a-f]{8,}|(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{6,})$")


def page_text(url: str | None, title: str | None) -> str:
    """The words a page is known by: its URL path (without host, query string and identifier segments) and its
    title. Empty for a page known only by an id: such a page has no topic, and the model uses it as a value
    (landing_page_path) instead."""
    path = _QUERY.sub("", _HOST.sub("", (url or "").lower()))
    tokens = [t for t in re.split(r"[/\-_.]+", path) if t and not _IDENTIFIER.match(t)]
    return " ".join(_WORDS.findall(" ".join(tokens) + " " + (title or "").lower()))


@dataclass
class TopicRefresh:
    fitted: bool
    pages: int
    topics: int


def model_path(settings: Settings) -> Path:
    return settings.models_dir / "content_topics.joblib"


def _fit(texts: list[str], seed: int) -> Pipeline:
    clusters = max(1, min(TOPIC_COUNT, len(set(texts))))
    model = make_pipeline(
        TfidfVectorizer(token_pattern=r"[a-z]{3,}", stop_words="english", sublinear_tf=True),
        Normalizer(),
        KMeans(n_clusters=clusters, n_init=10, random_state=seed),
    )
    model.fit(texts)
    return model


def _topic_labels(model: Pipeline) -> list[str]:
    vocabulary = np.asarray(model[0].get_feature_names_out())
    centres = model[-1].cluster_centers_
    return [" ".join(vocabulary[np.argsort(-centre)[:3]]) for centre in centres]


def _pages(con: Connection) -> pd.DataFrame:
    if table_exists(con, "raw", "web_pages"):
        return con.execute(
            "select url, max(title) as title from raw.web_pages where url is not null group by url order by url"
        ).df()
    return pd.DataFrame({"url": pd.Series(dtype=str), "title": pd.Series(dtype=str)})


def _fitted_model(settings: Settings, texts: list[str], refit: bool) -> tuple[Pipeline | None, bool]:
    """The saved topic model, fitted first (and saved) when there is none or a refit is asked for."""
    path = model_path(settings)
    fitted = False
    if refit or not path.exists():
        usable = [t for t in texts if t]
        if usable:
            path.parent.mkdir(parents=True, exist_ok=True)
            joblib.dump(_fit(sorted(set(usable)), settings.random_seed), path)
            fitted = True
    return (joblib.load(path) if path.exists() else None), fitted


def refresh_page_topics(con: Connection, settings: Settings, refit: bool = False) -> TopicRefresh:
    """Map every page URL in raw.web_pages to a topic (fitting the topic model first if there is none)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    pages = _pages(con)
    texts = [page_text(u, t) for u, t in zip(pages.url, pages.title)]
    model, fitted = _fitted_model(settings, texts, refit)
    topic = model.predict(texts) if model is not None and texts else np.zeros(len(texts), int)
    # A page with no usable words (e.g. the bare home page URL with no title) has no topic.
    topic = np.where([bool(t) for t in texts], topic, -1) if len(texts) else np.zeros(0, int)
    page_topics = pd.DataFrame({"url": pages.url, "topic_id": topic.astype("int32")})
    labels = _topic_labels(model) if model is not None else []
    content_topics = pd.DataFrame({
        "topic_id": np.arange(len(labels), dtype="int32"),
        "top_terms": labels,
        "pages": [int((page_topics.topic_id == k).sum()) for k in range(len(labels))],
    })
    con.register("page_topics_frame", page_topics)
    con.register("content_topics_frame", content_topics)
    ensure_outputs(con, SCHEMA, "page_topics", "content_topics")
    with transaction(con):  # emptied and refilled: the tables keep their definition and comments
        replace_contents(con, f"{SCHEMA}.page_topics", "select url, topic_id from page_topics_frame")
        replace_contents(con, f"{SCHEMA}.content_topics", "select topic_id, top_terms, pages from content_topics_frame")
    return TopicRefresh(fitted=fitted, pages=len(page_topics), topics=len(labels))
