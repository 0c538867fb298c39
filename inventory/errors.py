"""Problems found in an inventory, each pointing at the file and line to fix.

A problem renders as ``FILE:LINE: field: problem (hint)``. The text never contains a
credential: messages name the field, never quote the value a custodian wrote there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str | None
    problem: str
    hint: str | None = None

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: "
        if self.field:
            text += f"{self.field}: "
        text += self.problem
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __str__(self) -> str:
        return self.render()


class InventoryError(Exception):
    """The inventory cannot be used; `problems` lists every reason at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(self.summary())

    def summary(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the inventory"
        return "\n".join([head, *self.lines()])

    def lines(self) -> Sequence[str]:
        return [p.render() for p in self.problems]
