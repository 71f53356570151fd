"""Passwords too common to accept (OWASP ASVS 5, 6.2.4): the usual worldwide favourites plus
German ones, compared case-insensitively and also with trailing digits and symbols removed."""

from __future__ import annotations

import re

_WORDS = """
123456 123456789 12345678 1234567 12345 1234567890 1234 123123 111111 000000 123321 654321
666666 121212 112233 987654321 1q2w3e4r 1qaz2wsx qwerty qwertz qwerty123 qwertz123
qwertyuiop asdfgh asdfghjkl yxcvbnm zxcvbnm password passwort password1 passwort1 passw0rd
p4ssw0rd kennwort geheim geheim123 secret letmein welcome willkommen willkommen1 hallo
hallo123 hello iloveyou ichliebedich schatz schatzi liebe sonne sommer winter fruehling
herbst blume blumen master admin administrator root login abc123 abcdef abcdefgh test
test123 testtest demo dragon monkey football fussball fußball bayern bayern1900 bvb09
schalke04 borussia hertha werder eintracht hamburg berlin muenchen münchen koeln köln
frankfurt deutschland germany mercedes porsche audi volkswagen bmw nordwerk wertkette
autohaus sunshine princess shadow superman batman michael thomas andreas stefan daniel
sabine nicole julia lisa anna baseball starwars whatever trustno1 freedom charlie jordan
hunter killer soccer changeme default guest user benutzer mitarbeiter firma company partner
portal
""".split()  # noqa: SIM905 - a word list reads better as text

COMMON = frozenset(w.lower() for w in _WORDS)
_TRAILING = re.compile(r"[\d\W_]+$")


def is_common(password: str) -> bool:
    text = password.strip().lower()
    if text in COMMON:
        return True
    core = _TRAILING.sub("", text)
    return bool(core) and core in COMMON and len(core) >= 4
