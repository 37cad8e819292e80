"""Personal data at ingest: keyed pseudonyms, and ID-card and phone numbers redacted."""

from __future__ import annotations

import pandas as pd
import pytest

from features.ingest.privacy import (
    ID_CARD_TOKEN,
    PHONE_TOKEN,
    Pseudonymiser,
    pseudonym,
    redact_free_text,
    redact_text,
)


def test_the_same_identifier_and_key_give_the_same_pseudonym():
    assert pseudonym("610722195803120017", b"key-a") == pseudonym("610722195803120017", b"key-a")
    assert pseudonym("610722195803120017", b"key-a") != pseudonym("610722195803120018", b"key-a")
    assert pseudonym("610722195803120017", b"key-a") != pseudonym("610722195803120017", b"key-b")


def test_pseudonyms_are_short_prefixed_and_never_look_like_a_phone_number():
    names = [pseudonym(f"person-{i}", b"key") for i in range(5000)]
    assert all(len(n) == 18 and n.startswith("p_") for n in names)
    assert not any(set("01") & set(n[2:]) for n in names), "base 32 has no 0 or 1"


def test_pseudonymise_keeps_nulls_and_repeats():
    out = Pseudonymiser(lambda: b"key")(pd.Series(["a", None, "a", "b"], dtype="str", index=[7, 8, 9, 10], name="k"))
    assert out.iloc[0] == out.iloc[2] != out.iloc[3]
    assert pd.isna(out.iloc[1])
    assert list(out.index) == [7, 8, 9, 10] and out.name == "k" and out.dtype == "str"


def test_pseudonyms_cached_across_batches_equal_a_fresh_hmac_of_each_identifier():
    asked = []
    pseudonymise = Pseudonymiser(lambda: asked.append(1) or b"key")
    batches = [["w1", "w2", None, "w1"], ["w2", "w3", "w3"], [None], ["w3", "w1", "工号 4"]]
    for batch in batches:
        out = pseudonymise(pd.Series(batch, dtype="str"))
        assert [None if pd.isna(p) else p for p in out] == [None if i is None else pseudonym(i, b"key") for i in batch]
    assert len(asked) == 3, "the key is asked for only by batches that meet a new identifier"


def test_pseudonymiser_never_asks_for_the_key_without_identifiers():
    def no_key() -> bytes:
        raise AssertionError("key asked for")

    out = Pseudonymiser(no_key)(pd.Series([None, None], dtype="str"))
    assert out.isna().all()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证号610722195803120017", f"身份证号{ID_CARD_TOKEN}"),
        ("证件61072219660715002X。", f"证件{ID_CARD_TOKEN}。"),
        ("旧证610722580312001", f"旧证{ID_CARD_TOKEN}"),
        ("电话13912345678", f"电话{PHONE_TOKEN}"),
        ("联系人 139 1234 5678 王", f"联系人 {PHONE_TOKEN} 王"),
        ("+86 139-1234-5678", PHONE_TOKEN),
        ("座机0916-2345678，或(0916)2345678", f"座机{PHONE_TOKEN}，或{PHONE_TOKEN}"),
        ("全角１３９１２３４５６７８", f"全角{PHONE_TOKEN}"),
    ],
)
def test_id_card_and_phone_numbers_in_text_are_replaced_by_tokens(text, expected):
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    ["村居编码610722104201", "网格61072210420101", "2024-03-05 14:23:00+08:00", "参与人数 45 人", "编号12345678901"],
)
def test_codes_dates_and_ordinary_numbers_are_left_alone(text):
    assert redact_text(text) == (text, 0)


def test_redact_free_text_counts_redactions_and_keeps_nulls():
    texts = pd.Series(["电话13912345678，身份证610722195803120017", None, "巡查正常"], dtype="str")
    out, count = redact_free_text(texts)
    assert count == 2
    assert out.iloc[0] == f"电话{PHONE_TOKEN}，身份证{ID_CARD_TOKEN}"
    assert pd.isna(out.iloc[1]) and out.iloc[2] == "巡查正常"
