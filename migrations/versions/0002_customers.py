"""Customers, companies, custom fields, identities and merge redirects.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:56:14.187836
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_STAGES = '["lead", "prospect", "customer", "repeat", "vip", "churned"]'


def upgrade() -> None:
    op.create_table(
        "customer_redirect",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("merged_id", sa.Uuid(), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_customer_redirect_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "merged_id", name=op.f("pk_customer_redirect")),
    )
    op.create_table(
        "field_definition",
        sa.Column("object", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_field_definition_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_field_definition")),
    )
    with op.batch_alter_table("field_definition", schema=None) as batch_op:
        batch_op.create_index(
            "ix_field_definition_key", ["workspace_id", "object", "key"], unique=True
        )

    op.create_table(
        "company",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_kana", sa.String(length=200), nullable=True),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("industry", sa.String(length=100), nullable=True),
        sa.Column("employee_count", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column(
            "address",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["user.workspace_id", "user.id"],
            name="fk_company_owner_user",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_company_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_company")),
    )
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.create_index(
            "ix_company_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_company_domain", ["workspace_id", "domain"], unique=False)
        batch_op.create_index("ix_company_name", ["workspace_id", "name", "id"], unique=False)
        batch_op.create_index("ix_company_owner", ["workspace_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_company_updated", ["workspace_id", "updated_at", "id"], unique=False
        )

    op.create_table(
        "customer",
        sa.Column("family_name", sa.String(length=100), nullable=True),
        sa.Column("given_name", sa.String(length=100), nullable=True),
        sa.Column("family_name_kana", sa.String(length=100), nullable=True),
        sa.Column("given_name_kana", sa.String(length=100), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column(
            "emails",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "phones",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "external_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "address",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=50), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "consents",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name="fk_customer_company",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["user.workspace_id", "user.id"],
            name="fk_customer_owner_user",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_customer_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_customer")),
    )
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_company", ["workspace_id", "company_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_customer_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_customer_display_name", ["workspace_id", "display_name", "id"], unique=False
        )
        batch_op.create_index(
            "ix_customer_name_key", ["workspace_id", "name_key", "birthday"], unique=False
        )
        batch_op.create_index(
            "ix_customer_owner", ["workspace_id", "owner_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_customer_stage",
            ["workspace_id", "lifecycle_stage", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_customer_updated", ["workspace_id", "updated_at", "id"], unique=False
        )

    op.create_table(
        "customer_identity",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "customer_id"],
            ["customer.workspace_id", "customer.id"],
            name="fk_customer_identity_customer",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id",
            "customer_id",
            "kind",
            "source",
            "value",
            name=op.f("pk_customer_identity"),
        ),
    )
    with op.batch_alter_table("customer_identity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_identity_phone",
            ["workspace_id", "value"],
            unique=False,
            sqlite_where=sa.text("kind = 'phone'"),
            postgresql_where=sa.text("kind = 'phone'"),
        )
        batch_op.create_index(
            "ix_customer_identity_unique",
            ["workspace_id", "kind", "source", "value"],
            unique=True,
            sqlite_where=sa.text("kind <> 'phone'"),
            postgresql_where=sa.text("kind <> 'phone'"),
        )

    with op.batch_alter_table("workspace", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "lifecycle_stages",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=DEFAULT_STAGES,
            )
        )
    with op.batch_alter_table("workspace", schema=None) as batch_op:
        batch_op.alter_column("lifecycle_stages", server_default=None)

    if op.get_bind().dialect.name == "postgresql":
        # Substring search (LIKE '%...%') over normalised text, served by trigram indexes.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_customer_search_trgm ON customer USING gin (search_text gin_trgm_ops)"
        )
        op.execute(
            "CREATE INDEX ix_company_search_trgm ON company USING gin (search_text gin_trgm_ops)"
        )
        op.execute("CREATE INDEX ix_customer_tags_gin ON customer USING gin (tags jsonb_path_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_customer_tags_gin")
        op.execute("DROP INDEX ix_company_search_trgm")
        op.execute("DROP INDEX ix_customer_search_trgm")
    with op.batch_alter_table("workspace", schema=None) as batch_op:
        batch_op.drop_column("lifecycle_stages")

    with op.batch_alter_table("customer_identity", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_customer_identity_unique",
            sqlite_where=sa.text("kind <> 'phone'"),
            postgresql_where=sa.text("kind <> 'phone'"),
        )
        batch_op.drop_index(
            "ix_customer_identity_phone",
            sqlite_where=sa.text("kind = 'phone'"),
            postgresql_where=sa.text("kind = 'phone'"),
        )

    op.drop_table("customer_identity")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_updated")
        batch_op.drop_index("ix_customer_stage")
        batch_op.drop_index("ix_customer_owner")
        batch_op.drop_index("ix_customer_name_key")
        batch_op.drop_index("ix_customer_display_name")
        batch_op.drop_index("ix_customer_created")
        batch_op.drop_index("ix_customer_company")

    op.drop_table("customer")
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_index("ix_company_updated")
        batch_op.drop_index("ix_company_owner")
        batch_op.drop_index("ix_company_name")
        batch_op.drop_index("ix_company_domain")
        batch_op.drop_index("ix_company_created")

    op.drop_table("company")
    with op.batch_alter_table("field_definition", schema=None) as batch_op:
        batch_op.drop_index("ix_field_definition_key")

    op.drop_table("field_definition")
    op.drop_table("customer_redirect")
