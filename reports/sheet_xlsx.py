"""The sheet as an XLSX workbook with the PDF's content, for units that edit before
printing: the form (附件四) on the first worksheet, laid out for A4 landscape, then the
retention check and the month's availability."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from probes.result import CheckKind
from reports.model import HEADINGS, RETENTION_TITLE, Sheet, answer_text, kept_text, percent

# Office in Taiwan schools has 微軟正黑體; LibreOffice substitutes Noto Sans CJK TC
FONT = "Microsoft JhengHei"
THIN = Side(style="thin", color="000000")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD_FILL = PatternFill("solid", fgColor="EBEBEB")
WRAP_C = Alignment(horizontal="center", vertical="center", wrap_text=True)
WRAP_L = Alignment(horizontal="left", vertical="center", wrap_text=True)


def _footer(ws: Worksheet, sheet: Sheet) -> None:
    ws.oddFooter.left.text = f"文件編號 {sheet.document_id}  SHA-256 {sheet.data_sha256}"
    ws.oddFooter.left.size = 6
    ws.oddFooter.right.text = "第 &P 頁／共 &N 頁"
    ws.oddFooter.right.size = 8


def _setup(ws: Worksheet, sheet: Sheet) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    _footer(ws, sheet)


def _row(
    ws: Worksheet,
    r: int,
    values: list[str],
    *,
    head: bool = False,
    aligns: list[Alignment] | None = None,
) -> None:
    for i, v in enumerate(values, start=1):
        c = ws.cell(row=r, column=i, value=v)
        c.border = BOX
        c.font = Font(name=FONT, size=10 if head else 9, bold=head)
        c.alignment = aligns[i - 1] if aligns else WRAP_C
        if head:
            c.fill = HEAD_FILL


def render_xlsx(sheet: Sheet) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "保養紀錄簿"
    _setup(ws, sheet)
    widths = (13, 14, 14, 14, 18, 14, 70)
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w

    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=7)
    ws["A1"] = sheet.title
    ws["A1"].font = Font(name=FONT, size=16, bold=True)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=7)
    ws["A2"] = (
        f"業管單位：{sheet.unit_name}　月份：{sheet.roc_month}（{sheet.month}）　"
        f"管理人：{sheet.manager}　單位主管：{sheet.head}"
        + ("" if sheet.complete else f"　（本月尚未結束，截至 {sheet.generated_at[:16]}）")
    )
    ws["A2"].font = Font(name=FONT, size=10)
    ws["A2"].alignment = Alignment(horizontal="center")

    heads = [f"{h}\n□是 □否" if 1 <= i <= 3 else h for i, h in enumerate(HEADINGS)]
    _row(ws, 4, heads, head=True)
    ws.row_dimensions[4].height = 45
    ws.print_title_rows = "4:4"
    r = 5
    aligns = [WRAP_C] * 6 + [WRAP_L]
    for row in sheet.rows:
        _row(
            ws,
            r,
            [
                row.roc_date,
                *(answer_text(row.answer(c)) for c in CheckKind),
                f"{row.inspector}\n\n複核人：",
                "",
                "\n".join(row.remarks),
            ],
            aligns=aligns,
        )
        ws.row_dimensions[r].height = max(60, 15 * (len(row.remarks) + 1))
        r += 1

    r += 1
    for text in (
        f"備註：{sheet.note}",
        sheet.rule,
        "「■」為勾選：■是＝本期全程正常；■否＝本期內任何時間曾發生故障；兩格皆未勾選＝本期無法判定。",
    ):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=7)
        ws.cell(row=r, column=1, value=text).font = Font(name=FONT, size=9)
        ws.cell(row=r, column=1).alignment = WRAP_L
        r += 1
    r += 1
    ws.cell(row=r, column=1, value=f"文件編號 {sheet.document_id}").font = Font(name=FONT, size=8)
    ws.cell(row=r + 1, column=1, value=f"紀錄資料 SHA-256：{sheet.data_sha256}").font = Font(
        name=FONT, size=8
    )
    generated = ws.cell(row=r + 2, column=1, value=f"產生時間 {sheet.generated_at}")
    generated.font = Font(name=FONT, size=8)

    ret = wb.create_sheet("錄影保存期限")
    _setup(ret, sheet)
    ret["A1"] = RETENTION_TITLE
    ret["A1"].font = Font(name=FONT, size=11, bold=True)
    _row(ret, 3, ["監視主機", "主機代號", "實際保存日數", "規定", "結果", "依法保留"], head=True)
    for i, line in enumerate(sheet.retention, start=4):
        _row(
            ret,
            i,
            [
                line.recorder_name,
                line.recorder_id,
                kept_text(line),
                f"≥{line.min_days} 日、≤{line.max_days} 日",
                line.verdict,
                line.legal_hold or "",
            ],
        )
    for col, w in zip("ABCDEF", (22, 14, 14, 18, 22, 40), strict=True):
        ret.column_dimensions[col].width = w

    av = wb.create_sheet("妥善率")
    _setup(av, sheet)
    av["A1"] = "本月設備妥善率（正常時間／已判定時間）"
    av["A1"].font = Font(name=FONT, size=11, bold=True)
    _row(av, 3, ["設備", "類別", "位置", "主機運作", "錄影", "畫面", "故障時間（小時）"], head=True)
    for i, a in enumerate(sheet.availability, start=4):
        _row(
            av,
            i,
            [
                a.device_id,
                a.kind,
                a.place,
                percent(a.host),
                percent(a.recording),
                percent(a.picture),
                f"{a.fault_seconds / 3600:.1f}",
            ],
        )
    for col, w in zip("ABCDEFG", (16, 8, 36, 12, 12, 12, 16), strict=True):
        av.column_dimensions[col].width = w

    wb.properties.title = sheet.title
    wb.properties.subject = f"{sheet.unit_name} {sheet.roc_month}"
    wb.properties.keywords = f"{sheet.document_id} sha256:{sheet.data_sha256}"
    wb.properties.creator = "camwatch"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
