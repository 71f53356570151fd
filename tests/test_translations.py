"""The German and English catalogs: complete, current with the code, free of fuzzy entries,
with the placeholders of their msgids, and compiled (.mo) from the current .po files.

When this fails after a code change, update the catalogs as babel.cfg describes and translate
the new German entries.
"""

from __future__ import annotations

import subprocess
import sys
from enum import StrEnum
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.support import Translations

from portal import enums, ui

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
LOCALES = ("de", "en")
# The same extraction as documented in babel.cfg.
EXTRACT = ["extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "--no-location"]
SOURCES = ["portal", "partners", "shared_records", "auth", "templates"]


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def _po(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def _ids(catalog: Catalog) -> set[str]:
    return {str(m.id) if isinstance(m.id, str) else str(m.id[0]) for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """What `pybabel extract` finds in the code base right now."""
    target = tmp_path_factory.mktemp("babel") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", *EXTRACT, "-o", str(target), *SOURCES],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return _read(target)


def test_template_is_current(extracted: Catalog) -> None:
    """messages.pot holds exactly the msgids the code uses."""
    current = _ids(_read(TEMPLATE))
    found = _ids(extracted)
    assert found - current == set(), "missing from messages.pot (run pybabel extract)"
    assert current - found == set(), "no longer used, still in messages.pot"


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_is_current(extracted: Catalog, locale: str) -> None:
    """Each .po holds exactly the msgids the code uses (run pybabel update otherwise)."""
    catalog = _read(_po(locale), locale)
    found = _ids(extracted)
    assert found - _ids(catalog) == set(), f"missing from the {locale} catalog"
    assert _ids(catalog) - found == set(), f"no longer used, still in the {locale} catalog"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale: str) -> None:
    """No msgid lacks its translation (German complete; English may repeat the msgid)."""
    catalog = _read(_po(locale), locale)
    untranslated = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(s and s.strip() for s in strings):
            untranslated.append(message.id)
    assert untranslated == []


@pytest.mark.parametrize("locale", LOCALES)
def test_no_fuzzy_entries(locale: str) -> None:
    """Fuzzy entries are not used at run time (and a fuzzy header stops compilation)."""
    catalog = _read(_po(locale), locale)
    assert not catalog.fuzzy, "the catalog header is marked fuzzy"
    assert [m.id for m in catalog if m.id and m.fuzzy] == []


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_match(locale: str) -> None:
    """Every translation uses the placeholders of its msgid (else formatting fails)."""
    catalog = _read(_po(locale), locale)
    problems = [
        (message.id, [str(error) for error in errors]) for message, errors in catalog.check()
    ]
    assert problems == []


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_the_po(locale: str) -> None:
    """The .mo that the server loads is compiled from the current .po (`make` does that)."""
    mo = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"
    assert mo.exists(), f"{mo} is missing: run pybabel compile -d portal/translations"
    translations = Translations.load(str(TRANSLATIONS), [locale])
    stale = [
        m.id
        for m in _read(_po(locale), locale)
        if m.id and isinstance(m.id, str) and translations.gettext(m.id) != m.string
    ]
    assert stale == []


def test_german_wording() -> None:
    """A few anchors of the German vocabulary (Fall, Verlauf, teilen, übernehmen)."""
    translations = Translations.load(str(TRANSLATIONS), ["de"])
    assert translations.gettext("Inbox") == "Posteingang"
    assert translations.gettext("Timeline") == "Verlauf"
    assert translations.gettext("Claim") == "Übernehmen"
    assert translations.gettext("Share case") == "Fall teilen"
    assert translations.gettext("Email or password is wrong.") == "E-Mail oder Passwort ist falsch."


@pytest.mark.parametrize(
    ("group", "vocabulary"),
    [
        ("case_status", enums.CaseStatus),
        ("case_priority", enums.CasePriority),
        ("case_kind", enums.CaseKind),
        ("channel", enums.Channel),
        ("direction", enums.Direction),
        ("user_role", enums.UserRole),
        ("customer_kind", enums.CustomerKind),
        ("organization_kind", enums.OrganizationKind),
        ("partner_role", enums.PartnerRole),
        ("entry_kind", enums.EntryKind),
    ],
)
def test_every_enum_value_has_a_label(group: str, vocabulary: type[StrEnum]) -> None:
    """The pages never show a raw stored value of a closed vocabulary."""
    assert set(ui.VOCABULARY[group]) == {member.value for member in vocabulary}


def test_access_levels_have_labels() -> None:
    assert set(ui.VOCABULARY["access"]) == set(enums.SHARE_ACCESS_VALUES)
