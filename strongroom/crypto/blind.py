"""Blind-index tokens: search over encrypted text without storing its words.

A word becomes a token: HMAC-SHA256 of the normalised word under a key kept for one inbox and
one purpose (subject and body words, contact fields), truncated to TOKEN_BITS. The database
holds tokens, never words. A search turns the query's words into tokens the same way, finds
the candidates holding all of them, decrypts the candidates and drops the false positives,
so the answer is exact.

Truncation is deliberate: with TOKEN_BITS = 32 and a message of about 500 distinct words, a
query word matches an unrelated message with probability about 500 / 2^32 (1.2e-7), some
0.1 false candidates per word over 1,000,000 messages, which decrypting the candidates
removes. Short tokens also mean that a token does not pin down a word: about 2^32 / (number
of words ever written) words share each token.

What the tokens still reveal to someone holding the database (but not the key): which
messages share a word, and how often a token occurs. docs/encryption.md weighs this.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

TOKEN_BITS = 32
MIN_WORD = 2
MAX_WORD = 64
MAX_WORDS = 20_000  # a huge body is indexed by its first distinct words only

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(word: str) -> str:
    """Case, width and accents folded: "Façade", "FAÇADE" and "facade" are one word."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(text: str) -> list[str]:
    """The distinct normalised words of `text` worth indexing, in order of appearance.
    An e-mail address also yields its parts ("carla", "customer", "example")."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text):
        word = normalise(match.group())
        if MIN_WORD <= len(word) <= MAX_WORD:
            seen.setdefault(word, None)
            if len(seen) >= MAX_WORDS:
                break
    return list(seen)


def token(word: str, *, key: bytes) -> int:
    """The token of one already-normalised word under `key`, as a signed 32-bit integer (it
    fits an INTEGER column on every database)."""
    digest = hmac.new(key, word.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[: TOKEN_BITS // 8], "big", signed=True)


def tokens_of(text: str, *, key: bytes) -> set[int]:
    """Every token of `text` (to store with the encrypted value)."""
    return {token(word, key=key) for word in words_of(text)}


def query_tokens(query: str, *, key: bytes) -> list[int]:
    """The tokens a search for `query` needs, one per distinct word (all must match)."""
    return [token(word, key=key) for word in words_of(query)]


def matches(query: str, text: str) -> bool:
    """After decryption: does `text` really hold every word of `query`? (Drops the false
    positives of truncated tokens.)"""
    wanted = set(words_of(query))
    return bool(wanted) and wanted <= set(words_of(text))
