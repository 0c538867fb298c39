"""The inspection log: transitions, inspections, daily snapshots, alerts, state.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "check_transitions",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("check_kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("values", sa.JSON, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("started_at", _Ts, nullable=False),
        sa.Column("last_seen_at", _Ts, nullable=False),
        sa.Column("ended_at", _Ts, nullable=True),
    )
    op.create_index(
        "ix_transitions_device_check_started",
        "check_transitions",
        ["device", "check_kind", "started_at"],
    )
    op.create_index("ix_transitions_started", "check_transitions", ["started_at"])
    op.create_index("ix_transitions_last_seen", "check_transitions", ["last_seen_at"])

    op.create_table(
        "inspections",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("inspection_date", sa.Date, nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("period_start", _Ts, nullable=False),
        sa.Column("period_end", _Ts, nullable=False),
        sa.Column("host", sa.String(16), nullable=True),
        sa.Column("recording", sa.String(16), nullable=True),
        sa.Column("picture", sa.String(16), nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("recorded_at", _Ts, nullable=False),
        sa.UniqueConstraint("device", "inspection_date", name="uq_inspections_device_date"),
    )
    op.create_index("ix_inspections_date", "inspections", ["inspection_date"])

    op.create_table(
        "daily_snapshots",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("check_kind", sa.String(16), primary_key=True),
        sa.Column("ok_s", sa.Float, nullable=False),
        sa.Column("fail_s", sa.Float, nullable=False),
        sa.Column("unknown_s", sa.Float, nullable=False),
        sa.Column("worst", sa.String(16), nullable=True),
    )

    op.create_table(
        "alert_events",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("alertname", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("fired_at", _Ts, nullable=False),
        sa.Column("resolved_at", _Ts, nullable=True),
    )
    op.create_index("ix_alerts_device_fired", "alert_events", ["device", "fired_at"])
    op.create_index("ix_alerts_open", "alert_events", ["alertname", "device", "resolved_at"])

    op.create_table(
        "kv_state",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", _Ts, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kv_state")
    op.drop_table("alert_events")
    op.drop_table("daily_snapshots")
    op.drop_index("ix_inspections_date", table_name="inspections")
    op.drop_table("inspections")
    op.drop_index("ix_transitions_last_seen", table_name="check_transitions")
    op.drop_index("ix_transitions_started", table_name="check_transitions")
    op.drop_index("ix_transitions_device_check_started", table_name="check_transitions")
    op.drop_table("check_transitions")
