"""A real browser on `pipeline serve`: headless Chromium driven by Playwright.

Playwright drives the system's Chromium (Debian's `chromium` package, which `.ci/run` installs);
it never downloads a browser of its own. Screenshots are saved in var/screenshots/ for a person
to look at.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from .conftest import ROOT, scalar
from .servers import serving

SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTALL_HINT = ("install it with `sudo apt-get install chromium` (Debian/Ubuntu; .ci/run does "
                "this), or set CHROMIUM to a Chromium or Chrome executable")


def chromium() -> str:
    """The browser to drive; skipped when none is found, except in CI where that is a failure."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if os.environ.get("CI"):
        pytest.fail(f"no Chromium found in CI: {INSTALL_HINT}")
    pytest.skip(f"no Chromium found: {INSTALL_HINT}")


@pytest.mark.slow
def test_browse_search_facet_and_canned_query(browse_db):
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    db = browse_db["db"]
    with serving(db) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            # the articles table: newest first, with its facets
            page.goto(f"{base}/articles/articles")
            expect(page.locator("h1")).to_contain_text("articles")
            total = scalar(db, "select count(*) from articles")
            expect(page.locator(".count-column, h3").first).to_contain_text(f"{total:,} rows")
            for facet in ("provider_id", "topics", "published_month"):
                expect(page.locator(f'.facet-info[data-column="{facet}"]')).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "articles.png"))

            # a search
            page.fill("#_search", "facial")
            page.press("#_search", "Enter")
            page.wait_for_url(re.compile(r"_search=facial"))
            found = scalar(db, "select count(*) from articles_fts where articles_fts match 'facial'")
            expect(page.locator("h3").first).to_contain_text(f"{found} rows")

            # a facet value: the first topic narrows the search results
            link = page.locator('.facet-info[data-column="topics"] li a').first
            topic = link.inner_text()
            link.click()
            page.wait_for_url(re.compile(r"topics__arraycontains="))
            narrowed = scalar(
                db, "select count(*) from articles a where a.id in (select rowid from "
                    "articles_fts where articles_fts match 'facial') and exists (select 1 from "
                    "json_each(a.topics) where value = ?)", (topic,))
            expect(page.locator("h3").first).to_contain_text(f"{narrowed} row")
            page.screenshot(path=str(SCREENSHOTS / "search-and-facet.png"))

            # a canned query, opened from the database page
            page.goto(f"{base}/articles")
            page.get_by_role("link", name="Latest articles").click()
            page.wait_for_url(re.compile(r"/articles/latest_articles"))
            expect(page.locator("table.rows-and-columns tbody tr")).to_have_count(
                min(100, total))
            page.screenshot(path=str(SCREENSHOTS / "latest-articles.png"))

            # an article whose body is Markdown with a script in it: rendered, and inert
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{base}/articles/articles/{browse_db['edited_id']}")
            expect(page.locator("td strong", has_text="whole story")).to_be_visible()
            page.screenshot(path=str(SCREENSHOTS / "article.png"), full_page=True)
            assert dialogs == []
        finally:
            browser.close()
    assert (SCREENSHOTS / "articles.png").stat().st_size > 10_000
