"""share suspensions per pair of organisations instead of a flag per share

0008 marked every share of a partner leaving a value chain as `suspended`: one UPDATE of
about 11,000 share rows (plus their cases' locks and the share triggers) for a large dealer,
nine times what removing its visibility rows costs. Whether a share is in force depends only
on its case's owner and its organisation (do they share a chain?), so the fact is now kept
once per pair of organisations in `share_suspensions`; `CaseShare.suspended` is derived from
it. partners/service.py inserts or deletes the pairs and removes or restores exactly the
visibility rows they decide, without touching `case_shares`. The index of an organisation's
shares gains the case id, so that reading them needs no table access.

The visibility triggers read the pairs: a share whose (case owner, organisation) pair is
suspended grants nothing. On PostgreSQL they also take a shared advisory lock
(`pg_advisory_xact_lock_shared(8001, organisation)`) on every organisation whose pairs they
read, and recalculating an organisation's shares takes the exclusive one, so that a share
written while its organisation leaves a chain is seen by one side or the other, never lost
between them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 23:10:00.000000
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _load_0008() -> ModuleType:
    """0008's module (its triggers and functions are restored on downgrade)."""
    path = Path(__file__).with_name("20261122_0008_suspended_shares.py")
    spec = importlib.util.spec_from_file_location("wk_migration_0008", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_0008 = _load_0008()

_SQLITE_REFRESH = """
    DELETE FROM case_visibility WHERE case_id = {case};
    INSERT INTO case_visibility (organization_id, case_id, customer_id, last_activity_at, details)
    SELECT v.org, c.id, c.customer_id, c.last_activity_at, max(v.d)
    FROM (
        SELECT owner_organization_id AS org, 1 AS d FROM cases WHERE id = {case}
        UNION ALL SELECT handling_organization_id, 1 FROM cases WHERE id = {case}
        UNION ALL SELECT s.organization_id, s.include_contact_details FROM case_shares AS s
                  WHERE s.case_id = {case} AND NOT EXISTS (
                      SELECT 1 FROM share_suspensions AS x JOIN cases AS o
                          ON o.owner_organization_id = x.owner_organization_id
                      WHERE o.id = s.case_id AND x.organization_id = s.organization_id)
    ) AS v JOIN cases AS c ON c.id = {case}
    GROUP BY v.org;
"""

SQLITE_TRIGGERS = [
    "CREATE TRIGGER case_visibility_cases_ai AFTER INSERT ON cases BEGIN "
    + _SQLITE_REFRESH.format(case="NEW.id")
    + " END",
    "CREATE TRIGGER case_visibility_cases_au AFTER UPDATE OF owner_organization_id, "
    "handling_organization_id, customer_id ON cases BEGIN "
    + _SQLITE_REFRESH.format(case="NEW.id")
    + " END",
    "CREATE TRIGGER case_visibility_cases_activity AFTER UPDATE OF last_activity_at ON cases "
    "BEGIN UPDATE case_visibility SET last_activity_at = NEW.last_activity_at "
    "WHERE case_id = NEW.id; END",
    "CREATE TRIGGER case_visibility_cases_bd BEFORE DELETE ON cases "
    "BEGIN DELETE FROM case_visibility WHERE case_id = OLD.id; END",
    "CREATE TRIGGER case_visibility_shares_ai AFTER INSERT ON case_shares BEGIN "
    + _SQLITE_REFRESH.format(case="NEW.case_id")
    + " END",
    "CREATE TRIGGER case_visibility_shares_au AFTER UPDATE ON case_shares BEGIN "
    + _SQLITE_REFRESH.format(case="OLD.case_id")
    + _SQLITE_REFRESH.format(case="NEW.case_id")
    + " END",
    "CREATE TRIGGER case_visibility_shares_ad AFTER DELETE ON case_shares BEGIN "
    + _SQLITE_REFRESH.format(case="OLD.case_id")
    + " END",
]
SQLITE_TRIGGER_NAMES = _0008.SQLITE_TRIGGER_NAMES

POSTGRES_FUNCTIONS = [
    # The row-level refresh of one case (cases triggers).
    """
    CREATE OR REPLACE FUNCTION wk_case_visibility_refresh(p_case integer) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM cases WHERE id = p_case FOR UPDATE;
        -- The pairs read below belong to the owner and the share organisations.
        PERFORM pg_advisory_xact_lock_shared(8001, o.org)
        FROM (
            SELECT owner_organization_id AS org FROM cases WHERE id = p_case
            UNION SELECT organization_id FROM case_shares WHERE case_id = p_case
            ORDER BY 1
        ) AS o;
        DELETE FROM case_visibility WHERE case_id = p_case;
        INSERT INTO case_visibility
            (organization_id, case_id, customer_id, last_activity_at, details)
        SELECT v.org, c.id, c.customer_id, c.last_activity_at, bool_or(v.d)
        FROM (
            SELECT owner_organization_id AS org, true AS d FROM cases WHERE id = p_case
            UNION ALL SELECT handling_organization_id, true FROM cases WHERE id = p_case
            UNION ALL SELECT s.organization_id, s.include_contact_details FROM case_shares AS s
                      WHERE s.case_id = p_case AND NOT EXISTS (
                          SELECT 1 FROM share_suspensions AS x JOIN cases AS o
                              ON o.owner_organization_id = x.owner_organization_id
                          WHERE o.id = s.case_id AND x.organization_id = s.organization_id)
        ) AS v JOIN cases AS c ON c.id = p_case
        GROUP BY v.org, c.id, c.customer_id, c.last_activity_at;
    END $$
    """,
    # Set-based refresh of (case, organisation) pairs: p_cases[i] with p_orgs[i].
    """
    CREATE OR REPLACE FUNCTION wk_case_visibility_refresh_pairs(
        p_cases integer[], p_orgs integer[]
    ) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF coalesce(cardinality(p_cases), 0) = 0 THEN
            RETURN;
        END IF;
        -- Shared locks of the organisations whose pairs decide these shares (before any row
        -- lock: a recalculation holding the exclusive one takes no case locks).
        PERFORM pg_advisory_xact_lock_shared(8001, o.org)
        FROM (
            SELECT DISTINCT unnest(p_orgs) AS org
            UNION SELECT owner_organization_id FROM cases WHERE id = ANY(p_cases)
            ORDER BY 1
        ) AS o;
        -- The same lock as the row-level refresh, taken in id order (no lock-order cycles
        -- between two set-based refreshes).
        PERFORM 1 FROM cases
        WHERE id IN (SELECT unnest(p_cases)) ORDER BY id FOR UPDATE;
        WITH pairs AS (
            SELECT DISTINCT p.case_id, p.org FROM unnest(p_cases, p_orgs) AS p(case_id, org)
        ), wanted AS (
            SELECT p.org, c.id AS case_id, c.customer_id, c.last_activity_at,
                   p.org IN (c.owner_organization_id, c.handling_organization_id)
                       OR s.id IS NOT NULL AS visible,
                   p.org IN (c.owner_organization_id, c.handling_organization_id)
                       OR coalesce(s.include_contact_details, false) AS details
            FROM pairs AS p
            JOIN cases AS c ON c.id = p.case_id
            LEFT JOIN case_shares AS s
                ON s.case_id = p.case_id AND s.organization_id = p.org
                AND NOT EXISTS (
                    SELECT 1 FROM share_suspensions AS x
                    WHERE x.owner_organization_id = c.owner_organization_id
                      AND x.organization_id = p.org)
        ), gone AS (
            DELETE FROM case_visibility AS cv USING wanted AS w
            WHERE NOT w.visible AND cv.organization_id = w.org AND cv.case_id = w.case_id
        )
        INSERT INTO case_visibility
            (organization_id, case_id, customer_id, last_activity_at, details)
        SELECT w.org, w.case_id, w.customer_id, w.last_activity_at, w.details
        FROM wanted AS w
        WHERE w.visible
        ON CONFLICT (organization_id, case_id) DO UPDATE
            SET customer_id = EXCLUDED.customer_id,
                last_activity_at = EXCLUDED.last_activity_at,
                details = EXCLUDED.details
            WHERE (case_visibility.customer_id, case_visibility.last_activity_at,
                   case_visibility.details)
                  IS DISTINCT FROM
                  (EXCLUDED.customer_id, EXCLUDED.last_activity_at, EXCLUDED.details);
    END $$
    """,
    # Statement-level share triggers (one per event, as 0008): on UPDATE only rows whose
    # visibility columns changed count.
    """
    CREATE OR REPLACE FUNCTION wk_case_shares_visibility_set() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        v_cases integer[];
        v_orgs integer[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT array_agg(case_id), array_agg(organization_id) INTO v_cases, v_orgs
            FROM new_shares;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT array_agg(case_id), array_agg(organization_id) INTO v_cases, v_orgs
            FROM old_shares;
        ELSE
            SELECT array_agg(case_id), array_agg(organization_id) INTO v_cases, v_orgs
            FROM (
                (SELECT id, case_id, organization_id, include_contact_details FROM old_shares
                 EXCEPT
                 SELECT id, case_id, organization_id, include_contact_details FROM new_shares)
                UNION ALL
                (SELECT id, case_id, organization_id, include_contact_details FROM new_shares
                 EXCEPT
                 SELECT id, case_id, organization_id, include_contact_details FROM old_shares)
            ) AS changed;
        END IF;
        PERFORM wk_case_visibility_refresh_pairs(v_cases, v_orgs);
        RETURN NULL;
    END $$
    """,
]


def _or_replace(sql: str) -> str:
    return sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _drop_sqlite_triggers() -> None:
    for name in SQLITE_TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "share_suspensions",
        sa.Column("owner_organization_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "owner_organization_id", "organization_id", name=op.f("pk_share_suspensions")
        ),
    )
    op.create_index(
        op.f("ix_share_suspensions_organization_id"),
        "share_suspensions",
        ["organization_id"],
        unique=False,
    )
    # 0008's suspended shares become their pairs (by construction every share of such a
    # pair was suspended).
    op.execute(
        "INSERT INTO share_suspensions (owner_organization_id, organization_id, created_at) "
        "SELECT DISTINCT c.owner_organization_id, s.organization_id, CURRENT_TIMESTAMP "
        "FROM case_shares AS s JOIN cases AS c ON c.id = s.case_id WHERE s.suspended"
    )
    if dialect == "sqlite":
        _drop_sqlite_triggers()
    else:
        for statement in POSTGRES_FUNCTIONS:
            op.execute(statement)
    with op.batch_alter_table("case_shares", schema=None) as batch_op:
        batch_op.drop_column("suspended")
    # An organisation's shares by case, read from the index alone when it leaves a chain.
    op.drop_index("ix_case_shares_organization_id", table_name="case_shares")
    op.create_index(
        "ix_case_shares_organization_case", "case_shares", ["organization_id", "case_id"]
    )
    if dialect == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _drop_sqlite_triggers()
    op.drop_index("ix_case_shares_organization_case", table_name="case_shares")
    op.create_index("ix_case_shares_organization_id", "case_shares", ["organization_id"])
    op.add_column(
        "case_shares",
        sa.Column("suspended", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(
        "UPDATE case_shares SET suspended = true WHERE EXISTS ("
        "SELECT 1 FROM share_suspensions AS x JOIN cases AS c "
        "ON c.owner_organization_id = x.owner_organization_id "
        "WHERE c.id = case_shares.case_id AND x.organization_id = case_shares.organization_id)"
    )
    if dialect == "sqlite":
        for statement in _0008.SQLITE_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _0008.POSTGRES_FUNCTIONS[:3]:
            op.execute(_or_replace(statement))
    op.drop_index(op.f("ix_share_suspensions_organization_id"), table_name="share_suspensions")
    op.drop_table("share_suspensions")
