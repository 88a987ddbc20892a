"""Column alignment as Docker's table formatter does it (Go tabwriter: minwidth 10, padding 3).

Every column but the last is padded to max(10, widest cell + 3); the last is printed as is.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_WIDTH = 10
PADDING = 3


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return the table, one line per row, each line ending in a newline."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [
        max(MIN_WIDTH, max(len(line[col]) for line in lines) + PADDING)
        for col in range(len(headers) - 1)
    ]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        out.append("".join(cells) + line[-1] + "\n")
    return "".join(out)
