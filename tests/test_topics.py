"""Content topics: fitted once, applied unchanged, new pages land in existing topics."""

from __future__ import annotations

import duckdb

from core.warehouse import connect
from ingest.topics import TOPIC_COUNT, page_text, refresh_page_topics
from tests.conftest import isolated_settings

PAGES = [
    (f"https://site.test/blog/{theme}-{i}?utm_source=x", title)
    for i in range(12)
    for theme, title in (("security-zero-trust", "Zero trust security"), ("roi-calculator", "ROI calculator"),
                         ("migration-plan", "Migration plan"), ("analytics-dashboard", "Analytics dashboard"))
] + [("https://site.test/pricing", "Pricing"), ("https://site.test/demo", "Book a demo"), ("https://site.test/", "")]


def _land(settings, pages):
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema if not exists raw")
        con.execute("create or replace table raw.web_pages (url varchar, title varchar)")
        con.executemany("insert into raw.web_pages values (?, ?)", pages)


def _refresh(settings, refit: bool = False):
    with connect(settings) as con:
        return refresh_page_topics(con, settings, refit=refit)


def test_page_text_keeps_path_and_title_words_only():
    assert page_text("https://www.x.test/blog/roi-calculator-12?utm_source=mail#top", "ROI: the case") == \
        "blog roi calculator roi the case"
    assert page_text(None, None) == ""


def test_identifier_segments_are_not_words():
    """Hashes, UUIDs and letter-digit ids give no words (their letters are fragments); words beside them stay."""
    assert page_text("/lp/17e477fe899e29fb93a2117a6a9baadf", None) == ""
    assert page_text("https://a.test/landing/5f2a9c0e-1b2c-4d3e-8f90-1234567890ab", None) == "landing"
    assert page_text("/p/abc123def/pricing-plans", "Plans") == "pricing plans plans"
    assert page_text("/blog/decade-of-cafes", None) == "blog decade cafes"


def test_topics_are_fitted_once_and_new_pages_join_existing_topics(tmp_path):
    settings = isolated_settings(tmp_path)
    _land(settings, PAGES)
    first = _refresh(settings)
    # six distinct page texts (numbers and query strings are not words) -> six topics of the eight allowed
    assert first.fitted and first.topics == 6 <= TOPIC_COUNT and first.pages == len(PAGES)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        before = dict(con.execute("select url, topic_id from content.page_topics").fetchall())
    # same-theme pages share a topic
    assert len({before[f"https://site.test/blog/roi-calculator-{i}?utm_source=x"] for i in range(12)}) == 1
    _land(settings, PAGES + [("https://site.test/blog/roi-calculator-99", "ROI calculator")])
    second = _refresh(settings)
    assert not second.fitted and second.pages == len(PAGES) + 1
    with duckdb.connect(str(settings.warehouse_path)) as con:
        after = dict(con.execute("select url, topic_id from content.page_topics").fetchall())
    assert {u: after[u] for u in before} == before  # the saved model maps old pages exactly as before
    assert after["https://site.test/blog/roi-calculator-99"] == before["https://site.test/blog/roi-calculator-0?utm_source=x"]
    assert _refresh(settings, refit=True).fitted
