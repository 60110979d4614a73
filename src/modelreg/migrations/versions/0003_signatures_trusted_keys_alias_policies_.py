"""signatures, trusted keys, alias policies and approvals

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_at", sa.String(length=27), nullable=False),
        sa.Column("added_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_trusted_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_trusted_keys_name")),
    )
    op.create_table(
        "alias_policies",
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.String(length=27), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_alias_policies_model_id_models")
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_alias_policies")),
    )
    op.create_table(
        "approvals",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("approver", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_approvals_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("version_id", "alias", "approver", name=op.f("pk_approvals")),
    )
    op.create_table(
        "version_signatures",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("document_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_version_signatures_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("version_id", "key_id", name=op.f("pk_version_signatures")),
    )


def downgrade() -> None:
    op.drop_table("version_signatures")
    op.drop_table("approvals")
    op.drop_table("alias_policies")
    op.drop_table("trusted_keys")
