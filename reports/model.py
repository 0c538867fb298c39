"""The monthly maintenance sheet's data (附件四 保養紀錄簿): plain values that the sheet
builder (reports/sheet.py) fills from the log and the renderers (sheet_pdf.py,
sheet_xlsx.py) lay out — so that neither renderer imports the builder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from probes.result import CHECK_TITLES, CheckKind

RETENTION_TITLE = (
    "錄影保存期限檢核（規定八(三)：至少保存30日；八(四)：至遲1年內銷毀，依法保留者除外）"
)
NOTE = "業管單位應定期檢查監視錄影系統運作狀況，發現故障，立即報修。"
INSPECTOR = "camwatch 自動檢查"
CHECK_SHORT = {CheckKind.HOST: "主機", CheckKind.RECORDING: "錄影", CheckKind.PICTURE: "畫面"}
# The form's column headings: the date, the three questions of 附件四 (wrapped as the
# paper form wraps them, after the subject), the two signatures and the remarks.
HEADINGS = (
    "檢查日期\n(年月日)",
    *(f"{CHECK_TITLES[c][:4]}\n{CHECK_TITLES[c][4:]}" for c in CheckKind),
    "檢查人\n簽章",
    "帳管單位\n主管簽章",
    "備考（主機地點、機號）損壞情形（鏡頭位置）、是否申請修復",
)


@dataclass(frozen=True)
class SheetRow:
    inspection_date: dt.date
    roc_date: str  # 115/11/14
    recorder_id: str
    recorder_name: str
    period_start: str  # local ISO time
    period_end: str
    # True = 是 (normal), False = 否 (a fault in the period), None = could not judge
    host: bool | None
    recording: bool | None
    picture: bool | None
    inspector: str
    remarks: tuple[str, ...]

    def answer(self, check: CheckKind) -> bool | None:
        return {
            CheckKind.HOST: self.host,
            CheckKind.RECORDING: self.recording,
            CheckKind.PICTURE: self.picture,
        }[check]


@dataclass(frozen=True)
class RetentionLine:
    recorder_id: str
    recorder_name: str
    days_kept: float | None  # shortest over its channels
    days_max: float | None  # longest over its channels
    min_days: int
    max_days: int
    verdict: str  # 符合 / 不足 / 逾期未銷毀 / 依法保留 / 無資料
    legal_hold: str | None


@dataclass(frozen=True)
class AvailabilityLine:
    device_id: str
    kind: str  # 主機 / 鏡頭
    place: str
    recorder_id: str
    # check -> share of judged time that was normal (0..1), None if not judged
    host: float | None
    recording: float | None
    picture: float | None
    fault_seconds: float


@dataclass(frozen=True)
class Sheet:
    school: str
    title: str
    unit_id: str
    unit_name: str
    manager: str
    head: str
    month: str  # 2026-11
    roc_month: str  # 115年11月
    interval_days: int
    timezone: str
    complete: bool  # False while the month is still running
    rows: tuple[SheetRow, ...]
    retention: tuple[RetentionLine, ...]
    availability: tuple[AvailabilityLine, ...]
    note: str = NOTE
    rule: str = ""
    generated_at: str = ""
    data_sha256: str = ""
    document_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        """Everything printed that comes from the log (not when it was printed)."""
        d = asdict(self)
        for k in ("generated_at", "data_sha256", "document_id"):
            d.pop(k)
        return d


def answer_text(value: bool | None) -> str:
    """The form's two boxes with the right one ticked: ■是 □否 / □是 ■否 / □是 □否."""
    if value is True:
        return "■是 □否"
    if value is False:
        return "□是 ■否"
    return "□是 □否"


def kept_text(line: RetentionLine) -> str:
    """45 日, or 40–400 日 when the channels differ."""
    if line.days_kept is None:
        return "—"
    if line.days_max is None or line.days_max - line.days_kept < 1:
        return f"{line.days_kept:g} 日"
    return f"{line.days_kept:g}–{line.days_max:g} 日"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
