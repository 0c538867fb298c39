"""The Traditional Chinese font embedded in the sheet's PDF.

Debian's `fonts-noto-cjk` ships Noto Sans CJK as TrueType collections (.ttc, CFF
outlines) holding JP, KR, SC, TC and HK faces; fpdf2 embeds one face of a collection
(`collection_font_number`) as a subset, so the PDF carries only the glyphs it uses.
We pick the TC face by its name, not by a hard-coded index.

Override with CAMWATCH_CJK_FONT=/path/to/font.(ttf|otf|ttc)[#INDEX].
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ENV = "CAMWATCH_CJK_FONT"

CANDIDATES: dict[str, list[str]] = {
    "regular": [
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
        "/System/Library/Fonts/PingFang.ttc",
    ],
    "bold": [
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
        "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",
    ],
}

# glyphs the sheet needs beyond Chinese text: ticked and empty boxes
REQUIRED = "■□是否監視錄影"


class FontNotFoundError(RuntimeError):
    pass


@dataclass(frozen=True)
class FontFace:
    path: Path
    index: int  # face number inside a .ttc (0 for .ttf/.otf)
    name: str


def _tc_index(path: Path) -> tuple[int, str] | None:
    """The face of a collection named TC (Traditional Chinese) that has our glyphs."""
    from fontTools.ttLib import TTCollection, TTFont

    fonts: list[TTFont]
    if path.suffix.lower() in {".ttc", ".otc"}:
        fonts = list(TTCollection(str(path), lazy=True).fonts)
    else:
        fonts = [TTFont(str(path), lazy=True)]
    best: tuple[int, str] | None = None
    for i, font in enumerate(fonts):
        name = str(font["name"].getDebugName(4) or font["name"].getDebugName(1) or "")
        cmap = font.getBestCmap() or {}
        if not all(ord(ch) in cmap for ch in REQUIRED):
            continue
        if best is None or ("TC" in name.split() and "Mono" not in name):
            best = (i, name)
            if "TC" in name.split() and "Mono" not in name:
                break
    return best


@lru_cache(maxsize=4)
def find_font(weight: str = "regular") -> FontFace:
    """The font to embed; raises FontNotFoundError with what to install."""
    override = os.environ.get(ENV)
    if override:
        raw, _, idx = override.partition("#")
        path = Path(raw)
        if not path.is_file():
            raise FontNotFoundError(f"{ENV}={override}: no such font file")
        if idx:
            return FontFace(path, int(idx), path.stem)
        found = _tc_index(path)
        if found is None:
            raise FontNotFoundError(f"{ENV}={override}: the font lacks Traditional Chinese glyphs")
        return FontFace(path, found[0], found[1])
    for candidate in CANDIDATES.get(weight, []):
        path = Path(candidate)
        if path.is_file():
            found = _tc_index(path)
            if found is not None:
                return FontFace(path, found[0], found[1])
    if weight != "regular":
        return find_font("regular")
    raise FontNotFoundError(
        "no Traditional Chinese font found for the sheet: install fonts-noto-cjk "
        f"(apt-get install fonts-noto-cjk) or set {ENV}=/path/to/font.ttf"
    )
