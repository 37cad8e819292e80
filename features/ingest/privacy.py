"""Personal data at ingest: identifiers pseudonymised, ID-card and phone numbers redacted.

Principle 1 of DESIGN.md: the system scores places and projects, never persons. A person's
identifier becomes a keyed HMAC pseudonym (the same person, the same key → the same
pseudonym, so repeat petitions can still be counted); names never get past ingest; ID-card
and phone numbers typed into free text are replaced by a token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.ingest.arrow import arrow_text

PSEUDONYM_PREFIX = "p_"
PSEUDONYM_BYTES = 10
"""Bytes kept from the HMAC-SHA256 digest: 80 bits, collision-free in practice, written as
16 base-32 characters.

Base 32 (a–z, 2–7) rather than hex because it has no 0 or 1: a hex pseudonym now and then
contains eleven decimal digits in a row and looks like a mobile number to a PII scanner."""

ID_CARD_TOKEN = "[身份证号]"
PHONE_TOKEN = "[电话]"

_D = "[0-9０-９]"  # ASCII and full-width digits, both common in Chinese text
_NOT_DIGIT_BEFORE = f"(?<!{_D})"
_NOT_DIGIT_AFTER = f"(?!{_D})"
_COUNTRY = r"(?:(?:\+|００|00)?86[ -]?)?"
ID_CARD = re.compile(
    _NOT_DIGIT_BEFORE
    + rf"(?:[1-9１-９]{_D}{{16}}[0-9０-９XxＸｘ]|[1-9１-９]{_D}{{14}})"
    + r"(?![0-9０-９XxＸｘ])"
)
"""Resident ID numbers: 18 characters (the last may be X) or the old 15-digit form."""
PHONE = re.compile(
    _NOT_DIGIT_BEFORE
    + _COUNTRY
    + rf"(?:[1１][3-9３-９]{_D}(?:[ -]?{_D}{{4}}){{2}}"  # mobile: 139 1234 5678, 13912345678
    + rf"|(?:\(0{_D}{{2,3}}\)|（0{_D}{{2,3}}）|0{_D}{{2,3}})[ -]?{_D}{{7,8}})"  # landline: 0916-1234567
    + _NOT_DIGIT_AFTER
)
"""Mainland mobile numbers (11 digits from 13–19) and landlines with an area code."""
_CANDIDATE = "[0-9０-９]{3}[ -]?[0-9０-９]{4}"
"""A cheap vectorised filter: every match of ID_CARD or PHONE contains seven digits like this."""


_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
"""RFC 4648 base 32, lower case: ``base64.b32encode`` of 10 bytes, without its Python loop."""


def pseudonyms(identifiers: list[str], key: bytes) -> np.ndarray:
    """The keyed pseudonyms of ``identifiers`` (``str`` objects): an HMAC each, the base-32
    writing done for all at once in numpy (it cost as much as the HMAC when done per value)."""
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    digests = []
    for identifier in identifiers:
        mac = keyed.copy()
        mac.update(identifier.encode("utf-8"))
        digests.append(mac.digest()[:PSEUDONYM_BYTES])
    bits = np.unpackbits(np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, PSEUDONYM_BYTES), axis=1)
    digits = bits.reshape(len(digests), PSEUDONYM_BYTES * 8 // 5, 5) @ (1 << np.arange(4, -1, -1))
    text = _BASE32[digits].view(f"S{PSEUDONYM_BYTES * 8 // 5}").ravel().astype(str)
    return np.char.add(PSEUDONYM_PREFIX, text).astype(object)


def pseudonym(identifier: str, key: bytes) -> str:
    """The keyed pseudonym of one identifier (e.g. an ID-card number or a platform person id)."""
    return pseudonyms([identifier], key)[0]


class Pseudonymiser:
    """Identifiers → keyed pseudonyms, each distinct identifier's HMAC computed once per run.

    A worker or petitioner appears in many rows and many batches: the identifiers met so far
    and their pseudonyms are kept as two Arrow arrays (tens of bytes an identifier) and looked
    up with Arrow's hash join, so a batch pays HMACs only for the identifiers it meets first.
    ``key`` is called only when a first identifier needs one.
    """

    def __init__(self, key: Callable[[], bytes]) -> None:
        self.key = key
        self._identifiers = pa.array([], type=pa.large_string())
        self._pseudonyms = pa.array([], type=pa.large_string())

    def __call__(self, identifiers: pd.Series) -> pd.Series:
        """Every identifier replaced by its pseudonym (nulls stay null), index and name kept."""
        cells = arrow_text(identifiers.astype("str"))
        distinct = pc.drop_null(pc.unique(cells))
        new = distinct.filter(pc.is_null(pc.index_in(distinct, value_set=self._identifiers)))
        if len(new):
            names = pa.array(pseudonyms(new.to_pylist(), self.key()), type=pa.large_string())
            self._identifiers = pa.concat_arrays([self._identifiers, new])
            self._pseudonyms = pa.concat_arrays([self._pseudonyms, names])
        names = self._pseudonyms.take(pc.index_in(cells, value_set=self._identifiers))
        return names.to_pandas().astype("str").set_axis(identifiers.index).rename(identifiers.name)


@dataclass(frozen=True)
class RedactionRule:
    """Text matching ``pattern`` (a Python regular expression) is replaced by ``token``."""

    pattern: str
    token: str


@dataclass(frozen=True)
class Redactor:
    """A country's redaction rules for free text.

    ``candidate`` is a cheap RE2 pattern (run vectorised by Arrow) that every match of every
    rule contains: only cells matching it go through Python's regular expressions. None sends
    every non-empty cell through them, which is correct but slower on millions of cells.
    """

    rules: tuple[RedactionRule, ...]
    candidate: str | None = None

    @cached_property
    def compiled(self) -> tuple[tuple[re.Pattern[str], str], ...]:
        return tuple((re.compile(r.pattern), r.token) for r in self.rules)


MAINLAND_CHINA = Redactor(
    (RedactionRule(ID_CARD.pattern, ID_CARD_TOKEN), RedactionRule(PHONE.pattern, PHONE_TOKEN)), candidate=_CANDIDATE
)
"""The default: resident ID-card numbers, then mobile and landline numbers."""


def redact_text(text: str, redactor: Redactor = MAINLAND_CHINA) -> tuple[str, int]:
    """``text`` with every rule's matches replaced by its token, and how many were replaced."""
    total = 0
    for pattern, token in redactor.compiled:
        text, n = pattern.subn(token, text)
        total += n
    return text, total


def redact_free_text(texts: pd.Series, redactor: Redactor = MAINLAND_CHINA) -> tuple[pd.Series, int]:
    """A text column with the redactor's matches replaced, and the number of redactions.

    Only the cells that match the redactor's ``candidate`` (a vectorised test) go through
    Python's regular expressions, so a column of millions of short notes costs well under a
    second with the default rules.
    """
    if redactor.candidate is None:
        candidates = texts.notna()
    else:
        candidates = texts.str.contains(redactor.candidate, regex=True, na=False)
    if not candidates.any():
        return texts, 0
    redacted = [redact_text(t, redactor) for t in texts[candidates].tolist()]
    out = texts.copy()
    out.loc[candidates] = [t for t, _ in redacted]
    return out, sum(n for _, n in redacted)
