"""dedupe (pure half): canonical URLs and stable ids."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from url_normalize import url_normalize

from pipeline.config import Settings
from pipeline.dedupe import (
    Match,
    article_id,
    canonical_url,
    compare,
    features,
    lookup_keys,
    normalize_url,
    pack_keys,
    tokens,
    unpack_keys,
)

TRACKING = Settings().dedupe.tracking_params


@pytest.mark.parametrize(
    "url, expected",
    [
        ("HTTPS://Example.COM/a/b", "https://example.com/a/b"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com/a/", "https://example.com/a"),
        ("https://example.com/", "https://example.com/"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?utm_source=x&utm_medium=y&id=3", "https://example.com/a?id=3"),
        ("https://example.com/a?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&ocid=5", "https://example.com/a"),
        ("https://example.com/a?UTM_Campaign=z", "https://example.com/a"),
        ("https://example.com/a%7eb", "https://example.com/a~b"),
    ],
)
def test_canonical_url(url, expected):
    assert canonical_url(url, TRACKING) == expected


def test_tracking_list_is_configurable():
    assert canonical_url("https://e.com/a?src=rss&x=1", ["src"]) == "https://e.com/a?x=1"
    assert canonical_url("https://e.com/a?src=rss", []) == "https://e.com/a?src=rss"


def test_article_id_is_stable_positive_63_bit():
    a = article_id("https://example.com/a")
    assert a == article_id("https://example.com/a")
    assert a != article_id("https://example.com/b")
    assert 0 < a < 2**63
    # stable across processes and releases: the documented formula, and a fixed value
    digest = hashlib.blake2b(b"https://example.com/a", digest_size=8).digest()
    assert a == int.from_bytes(digest, "big") & (2**63 - 1) == 8235568502841796004


# -- level 1: AMP and other addresses of the same page ------------------------------------------


@pytest.mark.parametrize(
    "amp, canonical",
    [
        # Google AMP cache, https (/c/s/) and http (/c/), and the viewer form (/v/s/)
        ("https://www-bbc-com.cdn.ampproject.org/c/s/www.bbc.com/news/amp/business-53015468",
         "https://bbc.com/news/business-53015468"),
        ("https://example-com.cdn.ampproject.org/c/example.com/a/b", "http://example.com/a/b"),
        ("https://example-com.cdn.ampproject.org/v/s/example.com/a?amp_js_v=0.1&usqp=x",
         "https://example.com/a?amp_js_v=0.1&usqp=x"),
        # /amp/ path segments, first, middle or last
        ("https://abcnews.go.com/amp/Business/wireStory/x-67783126",
         "https://abcnews.go.com/Business/wireStory/x-67783126"),
        ("https://www.timeslive.co.za/amp/sunday-times/lifestyle/a-b/",
         "https://timeslive.co.za/sunday-times/lifestyle/a-b"),
        ("https://www.forbes.com/sites/x/2020/04/22/a-b/amp/", "https://forbes.com/sites/x/2020/04/22/a-b"),
        # .amp suffixes -> the .html page
        ("https://medicalxpress.com/news/2021-03-a-b.amp", "https://medicalxpress.com/news/2021-03-a-b.html"),
        ("https://example.com/news/a.amp.html", "https://example.com/news/a.html"),
        # query switches
        ("https://example.com/a?outputType=amp", "https://example.com/a"),
        ("https://example.com/a?id=3&amp=1", "https://example.com/a?id=3"),
        ("https://example.com/a?amp", "https://example.com/a"),
        # amp. and www. hosts
        ("https://amp.theguardian.com/technology/2020/a", "https://theguardian.com/technology/2020/a"),
        ("https://www.example.com/a", "https://example.com/a"),
    ],
)
def test_amp_addresses_map_to_the_page(amp, canonical):
    assert canonical_url(amp, TRACKING) == canonical


def test_amp_rules_leave_lookalikes_alone():
    # a word containing "amp", a non-amp query value, a host that merely starts with "amp"
    assert canonical_url("https://e.com/ampere/camp", TRACKING) == "https://e.com/ampere/camp"
    assert canonical_url("https://e.com/a?type=ampere", TRACKING) == "https://e.com/a?type=ampere"
    assert canonical_url("https://amplify.com/a", TRACKING) == "https://amplify.com/a"
    assert canonical_url("https://amp.com/a", TRACKING) == "https://amp.com/a"


# -- levels 2 and 3: text features and the confirming rule -------------------------------------

PARAMS = Settings().dedupe.params()


def feats(title, excerpt="", provider="a.com", published="2020-04-22T10:00:00Z", url=None, amp=None):
    return features(
        {"title": title, "excerpt": excerpt, "provider_id": provider, "published_at": published,
         "canonical_url": url or f"https://{provider}/{abs(hash(title + excerpt))}",
         "amp_url": amp},
        PARAMS,
    )


def test_tokens_fold_entities_unicode_case_and_punctuation():
    assert tokens("Intel &amp; Accenture’s “AI”&nbsp;-powered — ﬁne…") == [
        "intel", "accentures", "ai", "powered", "fine"]
    assert tokens("&amp;#038; A") == tokens("& a") == ["a"]
    assert tokens(None) == []


WIRE = ("Police departments around the U.S. are asking citizens to trust them to use facial "
        "recognition software as another handy tool in their crime-fighting toolbox. But some "
        "lawmakers — and even some technology giants — are hitting the brakes.")


def test_exact_text_is_level_2_whatever_the_punctuation():
    a = feats("Why some cities balk at face recognition", WIRE)
    b = feats("WHY some cities balk at face-recognition!", WIRE.replace("—", "--"), provider="b.com")
    assert compare(a, b, PARAMS) == Match(2, 1.0, "same title and excerpt")


def test_wire_story_under_another_headline_with_a_dateline_is_level_3():
    a = feats("Why some cities balk at face recognition tech", "SPRINGFIELD, Mass. -- " + WIRE)
    b = feats("Is facial-recognition tech too young to trust?", WIRE[:150] + " ...", provider="b.com")
    match = compare(a, b, PARAMS)
    assert match and match.level == 3 and match.rule == "excerpt containment" and match.score == 1.0
    assert compare(b, a, PARAMS) == match  # symmetric


def test_one_site_repeating_a_teaser_under_other_headlines_is_not_a_story():
    teaser = ("Keep abreast of significant corporate, financial and political developments "
              "around the world. Stay informed and spot emerging risks and opportunities.")
    a = feats("Amazon buys a robot maker", teaser, provider="ft.com")
    b = feats("Central banks weigh digital money", teaser + " Subscribe now.", provider="ft.com")
    assert compare(a, b, PARAMS) is None


def test_template_reports_are_not_duplicates():
    template = "The global {} market is expected to rise with an impressive CAGR and generate the highest revenue by 2026"
    a = feats("How Will Service Robotics Market Deal with the COVID-19 Crisis?",
              template.format("service robotics"), provider="m.com")
    b = feats("How Will Speech and Voice Recognition Market Deal with the COVID-19 Crisis?",
              template.format("speech and voice recognition"), provider="m.com")
    c = feats("How Will Natural Language Processing Market Deal with the COVID-19 Crisis?",
              template.format("natural language processing"), provider="n.com")
    for x, y in ((a, b), (a, c), (b, c)):
        assert compare(x, y, PARAMS) is None


def test_same_long_title_over_another_snippet_within_days():
    a = feats("Reducing the carbon footprint of artificial intelligence", "The paper is presented next week.")
    b = feats("Reducing carbon footprint of artificial intelligence", "AI has become a focus of ethical concerns.",
              provider="b.com", published="2020-04-23T10:00:00Z")
    assert compare(a, b, PARAMS) == Match(3, 1.0, "same long title")
    months_later = feats("Reducing carbon footprint of artificial intelligence", "Other.",
                         provider="b.com", published="2020-09-01T10:00:00Z")
    assert compare(a, months_later, PARAMS) is None
    short = feats("AI in healthcare", "One."), feats("AI in healthcare", "Two.", provider="b.com")
    assert compare(*short, PARAMS) is None  # too few words to be one story by title alone


def test_truncated_title_matches_the_full_one():
    full = feats("Boston Lawmakers Vote To Ban Use Of Facial Recognition Technology By The City",
                 "Boston is poised to ban its use of facial surveillance technology.")
    cut = feats("Boston Lawmakers Vote To Ban Use Of Facial Recogn...",
                "The city council unanimously voted on Wednesday.", provider="b.com")
    match = compare(full, cut, PARAMS)
    assert match and match.rule == "same long title" and 0 < match.score < 1
    other = feats("Boston Lawmakers Vote To Ban Use Of Plastic Bags...", "x", provider="c.com")
    assert compare(full, other, PARAMS) is None
    # they meet in the look-up: a shared title-prefix key
    assert set(lookup_keys(full, PARAMS)) & set(lookup_keys(cut, PARAMS))


def test_amp_address_listed_by_one_article_is_level_1():
    a = feats("A", url="https://usatoday.com/story/tech/2019/12/17/x/2680483001",
              amp="https://amp.usatoday.com/amp/2680483001")
    b = feats("B", url="https://usatoday.com/2680483001", provider="usatoday.com")
    assert compare(a, b, PARAMS) == Match(1, 1.0, "same address (AMP)")


def test_lookup_keys_are_stable_and_copies_share_bands():
    a = feats("Title one here", "SPRINGFIELD, Mass. -- " + WIRE)
    b = feats("Another headline entirely", WIRE, provider="b.com")
    assert lookup_keys(a, PARAMS) == lookup_keys(a, PARAMS)
    assert len(set(lookup_keys(a, PARAMS)) & set(lookup_keys(b, PARAMS))) >= 5
    assert unpack_keys(pack_keys(lookup_keys(a, PARAMS))) == lookup_keys(a, PARAMS)


def test_bands_must_divide_the_permutations():
    from pydantic import ValidationError

    from pipeline.config import DedupeSettings

    with pytest.raises(ValidationError, match="must divide"):
        DedupeSettings(num_perm=50, bands=16)
    assert DedupeSettings(num_perm=64, bands=16).params().rows == 4


_url_chars = "abcXYZ019-._~!$&'()*+,;=:@/?%#é "


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.from_regex(r"[A-Za-z0-9-]{1,8}(\.[A-Za-z0-9-]{1,8}){0,3}", fullmatch=True),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.text(alphabet=_url_chars, max_size=30),
)
def test_fast_url_normalisation_agrees_with_url_normalize(scheme, host, port, rest):
    """The fast path of normalize_url gives url-normalize's result (or defers to it)."""
    url = f"{scheme}://{host}{port}/{rest}"
    assert normalize_url(url) == (url_normalize(url) or url)
