"""The demo network: two manufacturers, their dealers and a supplier, with realistic German
customers and cases in every state, shared along both value chains.

Loaded by `portal demo load` and by `make run` on an empty database. Every account has the
password `demo` (demo mode only). The data is deterministic, so the tests can rely on it.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from auth.passwords import hash_password
from partners.models import Organization, User
from partners.service import add_partnership, create_organization
from portal.db import get_session, utcnow
from shared_records.models import (
    Case,
    CaseNumberCounter,
    CaseShare,
    Contact,
    Customer,
    EmailAddress,
    PhoneNumber,
    TimelineAudience,
    TimelineEntry,
)
from shared_records.normalize import normalize_phone

DEMO_PASSWORD = "demo"  # noqa: S105 - documented demo credential, demo mode only
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})

ORGANIZATIONS = [
    ("nordwerk", "Nordwerk Automobile AG", "manufacturer"),
    ("berger", "Autohaus Berger GmbH", "dealer"),
    ("kaya", "Autohaus Kaya", "dealer"),
    ("suedstern", "Südstern Motors GmbH", "manufacturer"),
    ("schulz", "Bremsen Schulz GmbH", "supplier"),
]
PARTNERSHIPS = [
    ("nordwerk", "berger", "dealer"),
    ("nordwerk", "kaya", "dealer"),
    ("nordwerk", "schulz", "supplier"),
    ("suedstern", "kaya", "dealer"),
]
USERS = [
    ("nordwerk", "agent@nordwerk.example", "Lena Hoffmann", "agent"),
    ("nordwerk", "admin@nordwerk.example", "Markus Weber", "admin"),
    ("nordwerk", "viewer@nordwerk.example", "Petra Lange", "viewer"),
    ("berger", "sales@berger.example", "Anna Berger", "agent"),
    ("berger", "admin@berger.example", "Thomas Berger", "admin"),
    ("kaya", "service@kaya.example", "Emre Kaya", "agent"),
    ("suedstern", "agent@suedstern.example", "Sophie Brandt", "agent"),
    ("schulz", "quality@schulz.example", "Jörg Schulz", "agent"),
]

FIRST_NAMES = [
    "Jürgen",
    "Sabine",
    "Klaus",
    "Monika",
    "Uwe",
    "Birgit",
    "Stefan",
    "Jörg",
    "Käthe",
    "Günther",
    "Ülkü",
    "Björn",
    "Renée",
    "Dörte",
    "Hans-Peter",
    "Anja",
    "Sören",
    "Françoise",
    "Mehmet",
    "Ingrid",
]
LAST_NAMES = [
    "Müller",
    "Schäfer",
    "Meyer",
    "Weiß",
    "Bäcker",
    "Groß",
    "Köhler",
    "Schröder",
    "Krüger",
    "Jäger",
    "Hübner",
    "Günther",
    "Wölfl",
    "Schmitz",
    "Öztürk",
    "Fuchs",
    "Lehmann",
    "Zimmermann",
    "Hoß",
    "Brückner",
]
# Extensions on the organisations' telephone systems (screen pops name the agent by these).
EXTENSIONS = {
    "agent@nordwerk.example": "201",
    "admin@nordwerk.example": "200",
    "sales@berger.example": "31",
    "service@kaya.example": "12",
}

CITIES = [
    ("10115", "Berlin", "030"),
    ("80331", "München", "089"),
    ("50667", "Köln", "0221"),
    ("20095", "Hamburg", "040"),
    ("70173", "Stuttgart", "0711"),
    ("90402", "Nürnberg", "0911"),
    ("01067", "Dresden", "0351"),
    ("04109", "Leipzig", "0341"),
    ("60311", "Frankfurt am Main", "069"),
    ("28195", "Bremen", "0421"),
]
STREETS = [
    "Hauptstraße",
    "Lindenallee",
    "Bahnhofstraße",
    "Schillerstraße",
    "Gartenweg",
    "Am Mühlbach",
]
SUBJECTS = {
    "inquiry": ["Frage zur Lieferzeit", "Anfrage Zubehör Dachträger", "Rückruf zu Finanzierung"],
    "service": ["Inspektion fällig", "Reifenwechsel Termin", "Ölwechsel und Bremsflüssigkeit"],
    "complaint": ["Quietschende Bremsen", "Lackschaden nach Werkstattbesuch", "Lange Wartezeit"],
    "warranty": ["Garantiefall Turbolader", "Bremssattel undicht", "Infotainment fällt aus"],
    "sales": ["Probefahrt Kombi", "Angebot Firmenwagen", "Inzahlungnahme Gebrauchtwagen"],
}
STATUSES = ["new", "open", "waiting", "resolved", "closed"]
PRIORITIES = ["low", "normal", "normal", "high", "urgent"]


@dataclass
class Network:
    orgs: dict[str, Organization]
    users: dict[str, User]


def is_empty(session: Session) -> bool:
    return session.scalars(sa.select(Organization.id).limit(1)).first() is None


def load_demo_network(app: Flask) -> None:
    """Create the demo network in the app's (empty) database."""
    with app.app_context():
        session = get_session()
        network = _organizations_and_users(session, app.config.get("ARGON2_PROFILE", "default"))
        _records(session, network)
        session.commit()


def _organizations_and_users(session: Session, argon2_profile: str) -> Network:
    orgs = {
        slug: create_organization(session, name=name, slug=slug, kind=kind)
        for slug, name, kind in ORGANIZATIONS
    }
    for manufacturer, partner, role in PARTNERSHIPS:
        add_partnership(session, orgs[manufacturer], orgs[partner], role)
    password_hash = hash_password(DEMO_PASSWORD, argon2_profile)
    users = {}
    for slug, email, name, role in USERS:
        user = User(
            organization_id=orgs[slug].id,
            email=email,
            name=name,
            role=role,
            password_hash=password_hash,
            phone_extension=EXTENSIONS.get(email),
        )
        session.add(user)
        users[email] = user
    session.flush()
    return Network(orgs, users)


class _Builder:
    """Writes demo records with explicit timestamps (the service layer always uses now)."""

    def __init__(self, session: Session, network: Network, now: dt.datetime) -> None:
        self.session = session
        self.net = network
        self.now = now
        self.counter = 0

    def customer(
        self,
        owner: str,
        name: str,
        *,
        phones: list[str],
        emails: list[str],
        postal_city: tuple[str, str, str],
        street: str,
        kind: str = "person",
        contacts: list[tuple[str, str, str]] | None = None,
    ) -> Customer:
        postal_code, city, _area = postal_city
        customer = Customer(
            owner_organization_id=self.net.orgs[owner].id,
            kind=kind,
            name=name,
            street=street,
            postal_code=postal_code,
            city=city,
            country="DE",
        )
        self.session.add(customer)
        self.session.flush()
        for index, raw in enumerate(phones):
            self.session.add(
                PhoneNumber(
                    customer_id=customer.id, e164=normalize_phone(raw, "DE"), position=index
                )
            )
        for index, email in enumerate(emails):
            self.session.add(EmailAddress(customer_id=customer.id, email=email, position=index))
        for contact_name, title, phone in contacts or []:
            contact = Contact(customer_id=customer.id, name=contact_name, position_title=title)
            self.session.add(contact)
            self.session.flush()
            self.session.add(
                PhoneNumber(
                    customer_id=customer.id,
                    contact_id=contact.id,
                    e164=normalize_phone(phone, "DE"),
                )
            )
        return customer

    def case(
        self,
        customer: Customer,
        owner: str,
        subject: str,
        *,
        kind: str,
        status: str,
        days_ago: float,
        description: str = "",
        priority: str = "normal",
        handler: str | None = None,
        claimed_by: str | None = None,
    ) -> Case:
        self.counter += 1
        created = self.now - dt.timedelta(days=days_ago)
        handling_user = self.net.users[claimed_by] if claimed_by else None
        handling_org = (
            handling_user.organization_id if handling_user else self.net.orgs[handler or owner].id
        )
        case = Case(
            number=f"C-{self.now.year}-{self.counter:06d}",
            customer_id=customer.id,
            subject=subject,
            description=description,
            kind=kind,
            status=status,
            priority=priority,
            owner_organization_id=self.net.orgs[owner].id,
            handling_organization_id=handling_org,
            handling_user_id=handling_user.id if handling_user else None,
            claimed_at=created + dt.timedelta(hours=1) if handling_user else None,
            created_at=created,
            updated_at=created,
            last_activity_at=created,
        )
        self.session.add(case)
        self.session.flush()
        return case

    def share(
        self, case: Case, org: str, access: str, *, details: bool = False, by: str | None = None
    ) -> None:
        sharer = self.net.users[by] if by else None
        at = case.created_at + dt.timedelta(hours=2)
        self.session.add(
            CaseShare(
                case_id=case.id,
                organization_id=self.net.orgs[org].id,
                access=access,
                include_contact_details=details,
                shared_by_user_id=sharer.id if sharer else None,
                created_at=at,
                updated_at=at,
            )
        )

    def entry(
        self,
        case: Case,
        author: str,
        body: str,
        *,
        hours_after: float,
        audience: str | list[str] = "shared",
        channel: str | None = None,
        direction: str | None = None,
    ) -> TimelineEntry:
        user = self.net.users[author]
        at = case.created_at + dt.timedelta(hours=hours_after)
        entry = TimelineEntry(
            case_id=case.id,
            kind="interaction" if channel else "note",
            channel=channel,
            direction=direction,
            body=body,
            audience=audience if isinstance(audience, str) else "organizations",
            author_user_id=user.id,
            organization_id=user.organization_id,
            created_at=at,
        )
        self.session.add(entry)
        self.session.flush()
        if isinstance(audience, list):
            ids = {self.net.orgs[slug].id for slug in audience} | {user.organization_id}
            self.session.add_all(
                TimelineAudience(entry_id=entry.id, organization_id=i) for i in ids
            )
        if at > case.last_activity_at:
            case.last_activity_at = at
        return entry


def _records(session: Session, net: Network) -> None:
    now = utcnow().replace(microsecond=0)
    b = _Builder(session, net, now)
    berlin, munich, cologne = CITIES[0], CITIES[1], CITIES[2]

    # Anchor records the tests and the README refer to.
    mueller = b.customer(
        "nordwerk",
        "Jürgen Müller",
        phones=["0171 2345678", "+49 30 12345678"],
        emails=["juergen.mueller@example.de"],
        postal_city=berlin,
        street="Lindenallee 12",
    )
    brakes = b.case(
        mueller,
        "nordwerk",
        "Bremsgeräusche an der Vorderachse",
        kind="warranty",
        status="open",
        days_ago=3,
        priority="high",
        description="Kunde meldet Quietschen beim Bremsen, Fahrzeug 14 Monate alt.",
    )
    b.share(brakes, "berger", "edit", details=True, by="agent@nordwerk.example")
    b.share(brakes, "schulz", "comment", details=False, by="agent@nordwerk.example")
    b.entry(
        brakes,
        "agent@nordwerk.example",
        "Anruf von Herrn Müller, Geräusch seit zwei Wochen.",
        hours_after=0.2,
        channel="phone",
        direction="in",
    )
    b.entry(
        brakes,
        "agent@nordwerk.example",
        "Intern: Kulanz bis 300 EUR freigegeben.",
        hours_after=1,
        audience="internal",
    )
    b.entry(
        brakes,
        "sales@berger.example",
        "Termin in der Werkstatt am Donnerstag vereinbart.",
        hours_after=5,
        audience=["nordwerk", "berger"],
    )
    b.entry(
        brakes,
        "quality@schulz.example",
        "Bitte Bremsbeläge zur Analyse einsenden (Charge prüfen).",
        hours_after=20,
    )

    schaefer = b.customer(
        "berger",
        "Sabine Schäfer",
        phones=["0049 89 1234567"],
        emails=["sabine.schaefer@example.de"],
        postal_city=munich,
        street="Bahnhofstraße 3",
    )
    lead = b.case(
        schaefer,
        "berger",
        "Probefahrt Kombi",
        kind="sales",
        status="new",
        days_ago=1,
        description="Interessiert an Kombi mit Anhängerkupplung. BERGER-INTERN-LEAD",
    )
    b.entry(
        lead,
        "sales@berger.example",
        "Rückruf vereinbart für Freitag.",
        hours_after=2,
        channel="phone",
        direction="out",
    )

    oeztuerk = b.customer(
        "suedstern",
        "Mehmet Öztürk",
        phones=["(0221) 987-6543"],
        emails=["m.oeztuerk@example.de"],
        postal_city=cologne,
        street="Am Mühlbach 7",
    )
    sued = b.case(
        oeztuerk,
        "suedstern",
        "Garantiefall Turbolader",
        kind="warranty",
        status="waiting",
        days_ago=6,
        description="SUEDSTERN-KETTE-GEHEIM: Turbolader pfeift.",
        handler="kaya",
    )
    b.share(sued, "kaya", "edit", details=True, by="agent@suedstern.example")
    b.entry(
        sued, "service@kaya.example", "Fahrzeug in der Werkstatt, Teil bestellt.", hours_after=4
    )

    fleet = b.customer(
        "kaya",
        "Köhler Logistik GmbH",
        kind="company",
        phones=["0711 4567890"],
        emails=["fuhrpark@koehler-logistik.example"],
        postal_city=CITIES[4],
        street="Industriestraße 40",
        contacts=[("Dörte Köhler", "Fuhrparkleitung", "0171 9876543")],
    )
    fleet_case = b.case(
        fleet,
        "kaya",
        "Angebot Firmenwagen",
        kind="sales",
        status="open",
        days_ago=4,
        claimed_by="service@kaya.example",
    )
    b.share(fleet_case, "nordwerk", "comment", details=False, by="service@kaya.example")
    b.entry(
        fleet_case,
        "service@kaya.example",
        "Zehn Fahrzeuge angefragt, Angebot folgt.",
        hours_after=3,
        audience="shared",
    )

    handed = b.case(
        mueller,
        "nordwerk",
        "Rückruf zu Finanzierung",
        kind="inquiry",
        status="open",
        days_ago=2,
        handler="kaya",
    )
    b.entry(
        handed,
        "agent@nordwerk.example",
        "Bitte Kunden zurückrufen, er wohnt näher bei Kaya.",
        hours_after=0.5,
        audience=["nordwerk", "kaya"],
    )

    # The rest of the network: realistic, deterministic variety.
    rng = random.Random(20261122)
    dealers = ["berger", "kaya"]
    formats = ["{area} {num}", "+49 {area1} {num}", "0049 {area1} {num}", "({area}) {num}"]
    for index in range(40):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        postal_city = rng.choice(CITIES)
        area = postal_city[2]
        number = f"{rng.randint(200000, 9999999)}"
        phone = rng.choice(formats).format(area=area, area1=area[1:], num=number)
        owner = rng.choice(["nordwerk", "nordwerk", "berger", "kaya", "suedstern"])
        local = last.lower().translate(_ASCII)
        customer = b.customer(
            owner,
            f"{first} {last}",
            phones=[phone],
            emails=[f"{first[0].lower()}.{local}{index}@example.de"],
            postal_city=postal_city,
            street=f"{rng.choice(STREETS)} {rng.randint(1, 120)}",
        )
        for _ in range(rng.randint(1, 2)):
            kind = rng.choice(list(SUBJECTS))
            case = b.case(
                customer,
                owner,
                rng.choice(SUBJECTS[kind]),
                kind=kind,
                status=rng.choice(STATUSES),
                priority=rng.choice(PRIORITIES),
                days_ago=rng.uniform(0.1, 60),
            )
            author = next(u for u in USERS if u[0] == owner and u[3] != "viewer")[1]
            b.entry(
                case,
                author,
                "Kunde kontaktiert.",
                hours_after=rng.uniform(0.1, 5),
                channel=rng.choice(["phone", "email", "letter", "web"]),
                direction="in",
            )
            if owner == "nordwerk" and rng.random() < 0.7:
                dealer = rng.choice(dealers)
                b.share(
                    case,
                    dealer,
                    rng.choice(["read", "comment", "edit"]),
                    details=rng.random() < 0.6,
                    by="agent@nordwerk.example",
                )
                if kind in ("warranty", "complaint") and rng.random() < 0.5:
                    b.share(case, "schulz", "comment", by="agent@nordwerk.example")
            elif owner in dealers and rng.random() < 0.5:
                b.share(
                    case,
                    "nordwerk",
                    "comment",
                    details=True,
                    by=next(u for u in USERS if u[0] == owner)[1],
                )
            elif owner == "suedstern" and rng.random() < 0.6:
                b.share(case, "kaya", "edit", details=True, by="agent@suedstern.example")
            if rng.random() < 0.3:
                b.entry(
                    case, author, "Interne Notiz zur Kulanz.", hours_after=6, audience="internal"
                )
    session.flush()
    session.add(CaseNumberCounter(year=now.year, last_value=b.counter))
    _activity_history(session)


def _activity_history(session: Session) -> None:
    """The demo's past as activities (oldest first), so the activity panel has a history."""
    from shared_records import events, feed

    users = {u.id: u for u in session.scalars(sa.select(User))}
    history: list[tuple[dt.datetime, int, Any]] = []
    for case in session.scalars(sa.select(Case)):
        creator = next(
            (
                u
                for u in users.values()
                if u.organization_id == case.owner_organization_id and u.role != "viewer"
            ),
            None,
        )
        if creator is not None:
            history.append(
                (case.created_at, 0, (events.ActivityType.CASE_CREATED, case, creator, None))
            )
    for entry in session.scalars(sa.select(TimelineEntry)):
        author = users.get(entry.author_user_id or 0)
        of_case = session.get(Case, entry.case_id)
        if author is not None and of_case is not None:
            history.append(
                (entry.created_at, 1, (events.ActivityType.TIMELINE_ADDED, of_case, author, entry))
            )
    for at, _order, (kind, subject, actor, note) in sorted(history, key=lambda item: item[:2]):
        details = (
            {"kind": note.kind, "channel": note.channel, "entry_id": note.id} if note else None
        )
        feed.record(session, events.build(kind, subject, actor, at, entry=note, details=details))
