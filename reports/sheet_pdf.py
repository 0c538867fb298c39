"""The sheet as a print-ready PDF laid out like 附件四 (A4 landscape, font embedded).

Every page carries the document id, the SHA-256 of the sheet's data and the page number
in its footer, so a signed printout can be matched to the log it came from.
"""

from __future__ import annotations

from fpdf import FPDF
from fpdf.enums import TableCellFillMode, WrapMode
from fpdf.fonts import FontFace as Style

from probes.result import CHECK_TITLES, CheckKind
from reports.fonts import find_font
from reports.model import HEADINGS, RETENTION_TITLE, Sheet, answer_text, kept_text, percent

FAMILY = "NotoTC"
HEAD_FILL = (235, 235, 235)
MAX_REMARKS = 8  # a row taller than a page cannot print; the rest goes to 備考（續）
WIDTHS = (22, 25, 25, 25, 33, 25, 122)  # mm, 277 in all (A4 landscape less margins)


class _SheetPDF(FPDF):
    def __init__(self, sheet: Sheet) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.sheet = sheet
        regular = find_font("regular")
        bold = find_font("bold")
        self.add_font(FAMILY, "", str(regular.path), collection_font_number=regular.index)
        self.add_font(FAMILY, "B", str(bold.path), collection_font_number=bold.index)
        self.set_margins(10, 10, 10)
        self.set_auto_page_break(True, margin=16)
        self.set_title(sheet.title)
        self.set_subject(f"{sheet.unit_name} {sheet.roc_month} 保養紀錄簿")
        self.set_author("camwatch")
        self.set_creator("camwatch")
        self.set_keywords(f"{sheet.document_id} sha256:{sheet.data_sha256}")
        self.alias_nb_pages()

    def footer(self) -> None:
        s = self.sheet
        self.set_y(-13)
        self.set_font(FAMILY, "", 6.5)
        self.set_text_color(60, 60, 60)
        self.cell(
            0,
            4,
            f"文件編號 {s.document_id}　產生時間 {s.generated_at}　{s.unit_name}　{s.roc_month}",
            align="L",
        )
        page = f"第 {self.page_no()} 頁／共 {{nb}} 頁"
        self.cell(0, 4, page, align="R", new_x="LMARGIN", new_y="NEXT")
        self.cell(0, 4, f"紀錄資料 SHA-256：{s.data_sha256}", align="L")
        self.set_text_color(0, 0, 0)


def _heading(pdf: _SheetPDF, text: str) -> None:
    if pdf.will_page_break(30):  # keep a heading with the start of its table
        pdf.add_page()
    else:
        pdf.ln(3)
    pdf.set_font(FAMILY, "B", 10)
    pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 8)


def render_pdf(sheet: Sheet) -> bytes:
    pdf = _SheetPDF(sheet)
    pdf.add_page()

    pdf.set_font(FAMILY, "B", 16)
    pdf.cell(0, 10, sheet.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 10)
    pdf.cell(
        0,
        6,
        f"業管單位：{sheet.unit_name}　　月份：{sheet.roc_month}（{sheet.month}）　　"
        f"管理人：{sheet.manager}　　單位主管：{sheet.head}",
        align="C",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if not sheet.complete:
        pdf.set_font(FAMILY, "", 8)
        pdf.cell(
            0,
            5,
            f"本月尚未結束：本表為截至 {sheet.generated_at[:16].replace('T', ' ')} 之紀錄",
            align="C",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(2)

    head_style = Style(emphasis="BOLD", fill_color=HEAD_FILL, size_pt=9)
    pdf.set_font(FAMILY, "", 8)
    with pdf.table(
        col_widths=WIDTHS,
        width=sum(WIDTHS),
        line_height=4.2,
        headings_style=head_style,
        text_align=("CENTER", "CENTER", "CENTER", "CENTER", "CENTER", "CENTER", "LEFT"),
        wrapmode=WrapMode.CHAR,
        padding=1.2,
        cell_fill_mode=TableCellFillMode.NONE,
    ) as table:
        head = table.row()
        for i, text in enumerate(HEADINGS):
            if 1 <= i <= 3:
                text = f"{text}\n□是 □否"
            head.cell(text, align="CENTER")
        overflow: list[tuple[str, str, str]] = []
        for row in sheet.rows:
            r = table.row()
            r.cell(row.roc_date)
            for check in CheckKind:
                r.cell(answer_text(row.answer(check)))
            r.cell(f"{row.inspector}\n\n複核人：\n\n")
            r.cell("")
            shown = list(row.remarks)
            if len(shown) > MAX_REMARKS:
                rest = shown[MAX_REMARKS - 1 :]
                shown = shown[: MAX_REMARKS - 1]
                shown.append(f"…另 {len(rest)} 項，見本表後「備考（續）」")
                overflow.extend((row.roc_date, row.recorder_name, text) for text in rest)
            r.cell("\n".join(shown), align="LEFT")

    if overflow:
        _heading(pdf, "備考（續）：上表各列未能容納之故障紀錄")
        with pdf.table(
            col_widths=(22, 50, 205),
            width=277,
            line_height=4,
            headings_style=Style(emphasis="BOLD", fill_color=HEAD_FILL, size_pt=9),
            wrapmode=WrapMode.CHAR,
            padding=0.8,
            text_align=("CENTER", "LEFT", "LEFT"),
        ) as table:
            h = table.row()
            for text in ("檢查日期", "監視主機", "備考"):
                h.cell(text, align="CENTER")
            for date, recorder, text in overflow:
                r = table.row()
                r.cell(date)
                r.cell(recorder)
                r.cell(text)

    pdf.ln(2)
    pdf.set_font(FAMILY, "", 9)
    pdf.multi_cell(0, 5, f"備註：{sheet.note}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 7.5)
    pdf.multi_cell(0, 4, sheet.rule, new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(
        0,
        4,
        "「■」為勾選：■是＝本期全程正常；■否＝本期內任何時間曾發生故障；兩格皆未勾選＝本期無法判定。"
        f"三欄依序為：{'、'.join(CHECK_TITLES.values())}。",
        new_x="LMARGIN",
        new_y="NEXT",
    )

    _heading(pdf, RETENTION_TITLE)
    with pdf.table(
        col_widths=(70, 30, 40, 50, 87),
        width=277,
        line_height=4.2,
        headings_style=head_style,
        wrapmode=WrapMode.CHAR,
        padding=1,
        text_align=("LEFT", "CENTER", "CENTER", "CENTER", "LEFT"),
    ) as table:
        h = table.row()
        for text in ("監視主機", "實際保存日數", "規定", "結果", "依法保留"):
            h.cell(text, align="CENTER")
        for line in sheet.retention:
            r = table.row()
            r.cell(f"{line.recorder_name}（{line.recorder_id}）")
            r.cell(kept_text(line))
            r.cell(f"≥{line.min_days} 日、≤{line.max_days} 日")
            r.cell(line.verdict)
            r.cell(line.legal_hold or "")

    _heading(pdf, "本月設備妥善率（正常時間／已判定時間）")
    # one line per device, drawn with plain cells: a table of hundreds of rows with
    # per-character wrapping would take seconds
    widths = (40, 16, 101, 30, 30, 30, 30)
    aligns = ("L", "C", "L", "R", "R", "R", "R")
    heads = ("設備", "類別", "位置", "主機運作", "錄影", "畫面", "故障時間")

    def header() -> None:
        pdf.set_font(FAMILY, "B", 8.5)
        pdf.set_fill_color(*HEAD_FILL)
        for w, text in zip(widths, heads, strict=True):
            pdf.cell(w, 6, text, border=1, align="C", fill=True)
        pdf.ln(6)
        pdf.set_font(FAMILY, "", 8)

    header()
    for a in sheet.availability:
        if pdf.will_page_break(5):
            pdf.add_page()
            header()
        values = (
            a.device_id,
            a.kind,
            a.place,
            percent(a.host),
            percent(a.recording),
            percent(a.picture),
            _hours(a.fault_seconds),
        )
        for w, align, text in zip(widths, aligns, values, strict=True):
            pdf.cell(w, 5, _fit(pdf, text, w - 2), border=1, align=align)
        pdf.ln(5)
    return bytes(pdf.output())


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """Cut text to one line of `width` mm, ending with … when cut."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _hours(seconds: float) -> str:
    if seconds <= 0:
        return "0"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} 分"
    return f"{seconds / 3600:.1f} 小時"
