"""suspended shares: a share whose two organisations no longer share a value chain grants
nothing until they do again; set-based visibility refresh for share changes

`case_shares.suspended` keeps a share (its access level and contact-details flag) while the
case owner and the share's organisation have no value chain in common, so that rejoining
restores it (partners/service.py recalculates it when a partnership ends or resumes).

The visibility triggers of 0007 are replaced by versions that ignore suspended shares. On
PostgreSQL the `case_shares` triggers become statement-level triggers with transition
tables: one UPDATE of 10,000 shares refreshes `case_visibility` in a handful of set-based
statements instead of 10,000 function calls. A share decides exactly one row of
`case_visibility` (its organisation and case; owner and handler come from `cases`), so a
share change refreshes just those (organisation, case) pairs: it locks their cases in id
order (FOR UPDATE, the same lock the row-level case refresh takes, so the two serialise),
then deletes the pairs no longer visible and inserts or corrects the visible ones. Writers
changing many shares should lock the cases first, in id order, to avoid deadlocks with
writers that lock a case before changing its shares (shared_records/service.py and
partners/service.py do so).

Note (as in 0007): SQLite's batch mode recreates a table and drops its triggers; the column
is added with a plain ALTER TABLE, and the triggers are re-created here anyway.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 19:40:00.000000
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _load_0007() -> ModuleType:
    """0007's module (its trigger definitions are restored on downgrade)."""
    path = Path(__file__).with_name("20261122_0007_case_visibility.py")
    spec = importlib.util.spec_from_file_location("wk_migration_0007", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_0007 = _load_0007()


_SQLITE_REFRESH = """
    DELETE FROM case_visibility WHERE case_id = {case};
    INSERT INTO case_visibility (organization_id, case_id, customer_id, last_activity_at, details)
    SELECT v.org, c.id, c.customer_id, c.last_activity_at, max(v.d)
    FROM (
        SELECT owner_organization_id AS org, 1 AS d FROM cases WHERE id = {case}
        UNION ALL SELECT handling_organization_id, 1 FROM cases WHERE id = {case}
        UNION ALL SELECT organization_id, include_contact_details FROM case_shares
                  WHERE case_id = {case} AND NOT suspended
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
SQLITE_TRIGGER_NAMES = _0007.SQLITE_TRIGGER_NAMES

POSTGRES_FUNCTIONS = [
    # The row-level refresh of one case (cases triggers), now ignoring suspended shares.
    """
    CREATE OR REPLACE FUNCTION wk_case_visibility_refresh(p_case integer) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM cases WHERE id = p_case FOR UPDATE;
        DELETE FROM case_visibility WHERE case_id = p_case;
        INSERT INTO case_visibility
            (organization_id, case_id, customer_id, last_activity_at, details)
        SELECT v.org, c.id, c.customer_id, c.last_activity_at, bool_or(v.d)
        FROM (
            SELECT owner_organization_id AS org, true AS d FROM cases WHERE id = p_case
            UNION ALL SELECT handling_organization_id, true FROM cases WHERE id = p_case
            UNION ALL SELECT organization_id, include_contact_details FROM case_shares
                      WHERE case_id = p_case AND NOT suspended
        ) AS v JOIN cases AS c ON c.id = p_case
        GROUP BY v.org, c.id, c.customer_id, c.last_activity_at;
    END $$
    """,
    # Set-based refresh of (case, organisation) pairs: p_cases[i] with p_orgs[i]. Whether an
    # organisation sees a case depends only on the case row (owner, handler) and its share
    # of that case, so only these pairs can change when shares change.
    """
    CREATE FUNCTION wk_case_visibility_refresh_pairs(p_cases integer[], p_orgs integer[])
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF coalesce(cardinality(p_cases), 0) = 0 THEN
            RETURN;
        END IF;
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
                ON s.case_id = p.case_id AND s.organization_id = p.org AND NOT s.suspended
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
    # Statement-level share triggers: PostgreSQL allows transition tables only on triggers
    # for one event, hence one trigger per event (one function, branching on TG_OP).
    # On UPDATE only rows whose visibility columns changed count (EXCEPT both ways).
    """
    CREATE FUNCTION wk_case_shares_visibility_set() RETURNS trigger
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
                (SELECT id, case_id, organization_id, include_contact_details, suspended
                 FROM old_shares
                 EXCEPT
                 SELECT id, case_id, organization_id, include_contact_details, suspended
                 FROM new_shares)
                UNION ALL
                (SELECT id, case_id, organization_id, include_contact_details, suspended
                 FROM new_shares
                 EXCEPT
                 SELECT id, case_id, organization_id, include_contact_details, suspended
                 FROM old_shares)
            ) AS changed;
        END IF;
        PERFORM wk_case_visibility_refresh_pairs(v_cases, v_orgs);
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER wk_case_shares_visibility_ins AFTER INSERT ON case_shares "
    "REFERENCING NEW TABLE AS new_shares "
    "FOR EACH STATEMENT EXECUTE FUNCTION wk_case_shares_visibility_set()",
    "CREATE TRIGGER wk_case_shares_visibility_upd AFTER UPDATE ON case_shares "
    "REFERENCING OLD TABLE AS old_shares NEW TABLE AS new_shares "
    "FOR EACH STATEMENT EXECUTE FUNCTION wk_case_shares_visibility_set()",
    "CREATE TRIGGER wk_case_shares_visibility_del AFTER DELETE ON case_shares "
    "REFERENCING OLD TABLE AS old_shares "
    "FOR EACH STATEMENT EXECUTE FUNCTION wk_case_shares_visibility_set()",
]


def _drop_sqlite_triggers() -> None:
    for name in SQLITE_TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    op.add_column(
        "case_shares",
        sa.Column("suspended", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        _drop_sqlite_triggers()
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
        return
    op.execute("DROP TRIGGER IF EXISTS wk_case_shares_visibility ON case_shares")
    op.execute("DROP FUNCTION IF EXISTS wk_case_shares_visibility()")
    for statement in POSTGRES_FUNCTIONS:
        op.execute(statement)
    # Shares suspended by a bulk load or restore before this revision do not exist; the
    # rows stay as 0007 computed them.


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _drop_sqlite_triggers()
    else:
        for event in ("ins", "upd", "del"):
            op.execute(f"DROP TRIGGER IF EXISTS wk_case_shares_visibility_{event} ON case_shares")
        op.execute("DROP FUNCTION IF EXISTS wk_case_shares_visibility_set()")
        op.execute("DROP FUNCTION IF EXISTS wk_case_visibility_refresh_pairs(integer[], integer[])")
    # Suspended shares grant visibility again under 0007's rule: drop them, so that
    # downgrading never widens what an organisation sees.
    op.execute("DELETE FROM case_shares WHERE suspended")
    # SQLite's batch copy drops the table's triggers: they are re-created afterwards.
    with op.batch_alter_table("case_shares", schema=None) as batch_op:
        batch_op.drop_column("suspended")
    if dialect == "sqlite":
        for statement in _0007.SQLITE_TRIGGERS:
            op.execute(statement)
        return
    postgres_0007 = _0007.POSTGRES_FUNCTIONS
    # 0007's refresh (CREATE OR REPLACE of the same signature), share function and trigger.
    op.execute(postgres_0007[0].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute(postgres_0007[2])
    op.execute(postgres_0007[5])
