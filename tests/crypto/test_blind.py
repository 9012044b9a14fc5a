"""Blind-index tokens: the same word gives the same token under one key and nothing readable."""

from __future__ import annotations

import os

from strongroom.crypto.blind import TOKEN_BITS, matches, normalise, query_tokens, token, tokens_of, words_of

KEY = os.urandom(32)


def test_words_are_folded_for_case_and_accents_and_addresses_split():
    assert normalise("FAÇADE") == normalise("façade") == "facade"
    assert words_of("Carla <carla@customer.example> wrote: Invoice invoice INVOICE") == [
        "carla",
        "customer",
        "example",
        "wrote",
        "invoice",
    ]


def test_one_letter_words_and_absurdly_long_ones_are_not_indexed():
    assert words_of("a I x " + "y" * 65 + " ok") == ["ok"]


def test_a_query_finds_its_words_tokens_and_they_reveal_no_word():
    stored = tokens_of("Your parcel 4471 was returned to the depot", key=KEY)

    assert set(query_tokens("PARCEL depot", key=KEY)) <= stored
    assert not set(query_tokens("invoice", key=KEY)) & stored
    assert all(-(2 ** (TOKEN_BITS - 1)) <= t < 2 ** (TOKEN_BITS - 1) for t in stored)


def test_tokens_depend_on_the_key():
    other = os.urandom(32)

    assert token("parcel", key=KEY) != token("parcel", key=other)


def test_matches_drops_false_positives_after_decryption():
    assert matches("parcel depot", "The parcel is at the depot")
    assert not matches("parcel depot", "The parcel is at home")
    assert not matches("", "anything")


def test_the_false_positive_rate_of_the_truncation_is_as_documented():
    # 200,000 random words against one message of 500 words: expect 500 * 200000 / 2**32 = 0.02
    message = tokens_of(" ".join(f"w{n}" for n in range(500)), key=KEY)
    hits = sum(token(f"q{n}", key=KEY) in message for n in range(200_000))

    assert hits <= 2
