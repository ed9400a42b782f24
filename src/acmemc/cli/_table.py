"""Plain-text tables in the heavy box style that cmemc's tables use."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

import asyncclick as click

__all__ = ["STATE_COLORS", "render_table"]

#: Terminal colours of health states in tables.
STATE_COLORS = {"UP": "green", "DOWN": "red", "UNKNOWN": "yellow"}

# Returns the colour of a cell from its column header and text, or None.
CellColor = Callable[[str, str], str | None]

# Each column has one space of padding on either side of its text.
PADDING = 2


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, cell_color: CellColor | None = None
) -> str:
    """Render a table that fits into ``width`` characters where possible.

    Columns wider than their share are wrapped: at spaces first, then inside
    long words such as IRIs, so no text is cut off. ``cell_color`` colours
    cells with ANSI codes, which ``click.echo`` removes when the output is not
    a terminal.
    """
    columns = list(zip(headers, *rows))
    natural = [max(len(cell) for cell in column) for column in columns]
    # A column keeps at least its header and its longest word (up to 30 characters,
    # so that long IRIs still wrap). A table that cannot fit then grows wider than
    # ``width`` rather than break words into fragments.
    minimum = [
        min(max(len(column[0]), min(max(len(word) for cell in column for word in cell.split() or [""]), 30)), high)
        for column, high in zip(columns, natural)
    ]
    widths = _fit(natural, minimum, width - (len(headers) + 1) - PADDING * len(headers))

    lines = [_border("┏", "━", "┳", "┓", widths)]
    lines.extend(_row_lines(headers, widths, "┃"))
    lines.append(_border("┣", "━", "╋", "┫", widths))
    for row in rows:
        colors = [cell_color(header, cell) if cell_color else None for header, cell in zip(headers, row)]
        lines.extend(_row_lines(row, widths, "┃", colors))
    lines.append(_border("┗", "━", "┻", "┛", widths))
    return "\n".join(lines)


def _fit(natural: list[int], minimum: list[int], available: int) -> list[int]:
    """Share ``available`` characters: each column gets its minimum, then the rest in proportion to what it lacks."""
    if sum(natural) <= available:
        return natural
    spare = max(available - sum(minimum), 0)
    lacking = [high - low for low, high in zip(minimum, natural)]
    total_lacking = sum(lacking) or 1
    widths = [low + spare * lack // total_lacking for low, lack in zip(minimum, lacking)]
    return widths


def _border(left: str, line: str, middle: str, right: str, widths: list[int]) -> str:
    return left + middle.join(line * (width + PADDING) for width in widths) + right


def _row_lines(
    cells: Sequence[str], widths: list[int], edge: str, colors: Sequence[str | None] | None = None
) -> list[str]:
    wrapped = [_wrap(cell, width) for cell, width in zip(cells, widths)]
    colors = colors or [None] * len(widths)
    height = max(len(lines) for lines in wrapped)
    lines = []
    for line_number in range(height):
        parts = []
        for cell_lines, width, color in zip(wrapped, widths, colors):
            text = cell_lines[line_number] if line_number < len(cell_lines) else ""
            # Colour after padding, so that escape codes do not count as width.
            padded = text.ljust(width)
            parts.append(" " + (click.style(padded, fg=color) if color else padded) + " ")
        lines.append(edge + edge.join(parts) + edge)
    return lines


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
