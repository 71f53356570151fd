"""case visibility: the policy's case rule materialised, kept current by triggers

One row per organisation and case it sees (owner, handler, share) in inbox order, so a
page of any organisation's inbox is one index range at any depth. Triggers on `cases` and
`case_shares` rewrite a case's rows when its owner, handler, customer or shares change and
move them when its last activity changes. Note for later migrations: SQLite's batch mode
recreates a table and drops its triggers; re-create them (SQLITE_TRIGGERS) after such a step.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 17:44:37.025983
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_SQLITE_REFRESH = """
    DELETE FROM case_visibility WHERE case_id = {case};
    INSERT INTO case_visibility (organization_id, case_id, customer_id, last_activity_at, details)
    SELECT v.org, c.id, c.customer_id, c.last_activity_at, max(v.d)
    FROM (
        SELECT owner_organization_id AS org, 1 AS d FROM cases WHERE id = {case}
        UNION ALL SELECT handling_organization_id, 1 FROM cases WHERE id = {case}
        UNION ALL SELECT organization_id, include_contact_details FROM case_shares
                  WHERE case_id = {case}
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
SQLITE_TRIGGER_NAMES = [
    "case_visibility_cases_ai",
    "case_visibility_cases_au",
    "case_visibility_cases_activity",
    "case_visibility_cases_bd",
    "case_visibility_shares_ai",
    "case_visibility_shares_au",
    "case_visibility_shares_ad",
]

POSTGRES_FUNCTIONS = [
    # The case row lock serialises concurrent refreshes of one case.
    """
    CREATE FUNCTION wk_case_visibility_refresh(p_case integer) RETURNS void
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
                      WHERE case_id = p_case
        ) AS v JOIN cases AS c ON c.id = p_case
        GROUP BY v.org, c.id, c.customer_id, c.last_activity_at;
    END $$
    """,
    """
    CREATE FUNCTION wk_cases_visibility() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM case_visibility WHERE case_id = OLD.id;
            RETURN OLD;
        END IF;
        IF TG_OP = 'INSERT'
           OR NEW.owner_organization_id IS DISTINCT FROM OLD.owner_organization_id
           OR NEW.handling_organization_id IS DISTINCT FROM OLD.handling_organization_id
           OR NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
            PERFORM wk_case_visibility_refresh(NEW.id);
        ELSIF NEW.last_activity_at IS DISTINCT FROM OLD.last_activity_at THEN
            UPDATE case_visibility SET last_activity_at = NEW.last_activity_at
            WHERE case_id = NEW.id;
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE FUNCTION wk_case_shares_visibility() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            PERFORM wk_case_visibility_refresh(OLD.case_id);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            PERFORM wk_case_visibility_refresh(NEW.case_id);
        END IF;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER wk_cases_visibility AFTER INSERT OR UPDATE ON cases "
    "FOR EACH ROW EXECUTE FUNCTION wk_cases_visibility()",
    "CREATE TRIGGER wk_cases_visibility_delete BEFORE DELETE ON cases "
    "FOR EACH ROW EXECUTE FUNCTION wk_cases_visibility()",
    "CREATE TRIGGER wk_case_shares_visibility AFTER INSERT OR UPDATE OR DELETE ON case_shares "
    "FOR EACH ROW EXECUTE FUNCTION wk_case_shares_visibility()",
]

# Every row from scratch (also `portal bench seed` after a bulk load with triggers off).
BACKFILL = """
    INSERT INTO case_visibility (organization_id, case_id, customer_id, last_activity_at, details)
    SELECT v.org, c.id, c.customer_id, c.last_activity_at, {agg}(v.d)
    FROM (
        SELECT id AS case_id, owner_organization_id AS org, {true} AS d FROM cases
        UNION ALL SELECT id, handling_organization_id, {true} FROM cases
        UNION ALL SELECT case_id, organization_id, include_contact_details FROM case_shares
    ) AS v JOIN cases AS c ON c.id = v.case_id
    GROUP BY v.org, c.id, c.customer_id, c.last_activity_at
"""


def backfill_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return BACKFILL.format(agg="bool_or", true="true")
    return BACKFILL.format(agg="max", true="1")


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "case_visibility",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_visibility_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_case_visibility_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_case_visibility_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("organization_id", "case_id", name=op.f("pk_case_visibility")),
    )
    with op.batch_alter_table("case_visibility", schema=None) as batch_op:
        batch_op.create_index("ix_case_visibility_case", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_case_visibility_customer", ["organization_id", "customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_case_visibility_inbox",
            ["organization_id", "last_activity_at", "case_id"],
            unique=False,
        )

    # ### end Alembic commands ###
    dialect = op.get_bind().dialect.name
    op.execute(backfill_sql(dialect))
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_FUNCTIONS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS wk_case_shares_visibility ON case_shares")
        op.execute("DROP TRIGGER IF EXISTS wk_cases_visibility ON cases")
        op.execute("DROP TRIGGER IF EXISTS wk_cases_visibility_delete ON cases")
        op.execute("DROP FUNCTION IF EXISTS wk_case_shares_visibility()")
        op.execute("DROP FUNCTION IF EXISTS wk_cases_visibility()")
        op.execute("DROP FUNCTION IF EXISTS wk_case_visibility_refresh(integer)")
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("case_visibility", schema=None) as batch_op:
        batch_op.drop_index("ix_case_visibility_inbox")
        batch_op.drop_index("ix_case_visibility_customer")
        batch_op.drop_index("ix_case_visibility_case")

    op.drop_table("case_visibility")
    # ### end Alembic commands ###
