"""Plain-text tables in the heavy box style that cmemc's tables use."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

__all__ = ["render_table"]

# Each column has one space of padding on either side of its text.
PADDING = 2


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> str:
    """Render a table that fits into ``width`` characters where possible.

    Columns wider than their share are wrapped: at spaces first, then inside
    long words such as IRIs, so no text is cut off.
    """
    natural = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            natural[index] = max(natural[index], len(cell))
    widths = _fit(natural, width - (len(headers) + 1) - PADDING * len(headers))

    lines = [_border("┏", "━", "┳", "┓", widths)]
    lines.extend(_row_lines(headers, widths, "┃"))
    lines.append(_border("┣", "━", "╋", "┫", widths))
    for row in rows:
        lines.extend(_row_lines(row, widths, "┃"))
    lines.append(_border("┗", "━", "┻", "┛", widths))
    return "\n".join(lines)


def _fit(natural: list[int], available: int) -> list[int]:
    """Share ``available`` characters among columns; narrow columns keep their natural width."""
    if sum(natural) <= available:
        return natural
    widths = [0] * len(natural)
    remaining = list(range(len(natural)))
    budget = max(available, len(natural))
    while remaining:
        share = max(budget // len(remaining), 1)
        narrow = [index for index in remaining if natural[index] <= share]
        if not narrow:
            for position, index in enumerate(remaining):
                # Hand out the remainder of the division to the first columns.
                widths[index] = share + (1 if position < budget - share * len(remaining) else 0)
            break
        for index in narrow:
            widths[index] = natural[index]
            budget -= natural[index]
            remaining.remove(index)
    return [max(width, 1) for width in widths]


def _border(left: str, line: str, middle: str, right: str, widths: list[int]) -> str:
    return left + middle.join(line * (width + PADDING) for width in widths) + right


def _row_lines(cells: Sequence[str], widths: list[int], edge: str) -> list[str]:
    wrapped = [_wrap(cell, width) for cell, width in zip(cells, widths)]
    height = max(len(lines) for lines in wrapped)
    lines = []
    for line_number in range(height):
        parts = []
        for cell_lines, width in zip(wrapped, widths):
            text = cell_lines[line_number] if line_number < len(cell_lines) else ""
            parts.append(" " + text.ljust(width) + " ")
        lines.append(edge + edge.join(parts) + edge)
    return lines


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
