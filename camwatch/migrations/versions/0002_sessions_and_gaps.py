"""When the log was being kept: writer sessions and the gaps in the log.

`log_sessions`: one row per `camwatch run` writing the log (its shard, host, pid), with
`kept_until` moved forward by every committed batch of results. `log_gaps`: stretches
in which results were produced but could not be kept (the disk was full and the waiting
results overflowed their bound), written when the log is writable again. The sheet marks
both kinds of hole 「紀錄中斷」 instead of ticking 是.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "log_sessions",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("shard", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", _Ts, nullable=False),
        sa.Column("kept_until", _Ts, nullable=False),
        sa.Column("ended_at", _Ts, nullable=True),
    )
    op.create_index("ix_sessions_started", "log_sessions", ["started_at"])
    op.create_table(
        "log_gaps",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("shard", sa.String(16), nullable=False),
        sa.Column("started_at", _Ts, nullable=False),
        sa.Column("ended_at", _Ts, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("results_lost", sa.Integer, nullable=False),
        sa.Column("recorded_at", _Ts, nullable=False),
    )
    op.create_index("ix_gaps_started", "log_gaps", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_gaps_started", table_name="log_gaps")
    op.drop_table("log_gaps")
    op.drop_index("ix_sessions_started", table_name="log_sessions")
    op.drop_table("log_sessions")
