"""Spelling-tolerant keys for names, cities and search terms.

`fold` makes the spellings of one name equal: accents are transliterated (anyascii), case
is dropped and the German umlaut transcriptions are undone, so "Müller", "Mueller" and
"Muller" all become "muller". `phonetic` adds Kölner Phonetik codes, which also equate
common typos ("Schmidt", "Schmitt", "Schmid"). Stored keys and queries go through the same
functions, so both search engines and the duplicate check compare like with like.
"""

from __future__ import annotations

import re

import cologne_phonetics
from anyascii import anyascii

_TRANSCRIPTIONS = re.compile(r"(?<=[a-z])(ae|oe|ue)|^(ae|oe|ue)")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    """Lower-case ASCII with umlaut transcriptions undone and punctuation as single spaces."""
    ascii_text = anyascii(text).lower()
    ascii_text = _NON_WORD.sub(" ", ascii_text)
    folded = _TRANSCRIPTIONS.sub(lambda m: (m.group(1) or m.group(2))[0], ascii_text)
    return " ".join(folded.split())


def words(text: str) -> list[str]:
    """The folded words of `text` (letters and digits only)."""
    return _WORD.findall(fold(text))


def phonetic(text: str) -> list[str]:
    """Kölner Phonetik codes of the words of `text` that contain letters (digits are kept out)."""
    codes: list[str] = []
    for word in words(text):
        if len(word) < 2 or not any(c.isalpha() for c in word):
            continue
        for _, code in cologne_phonetics.encode(word):
            if code and code not in codes:
                codes.append(code)
    return codes
