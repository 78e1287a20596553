"""What a terminal shows at the end of a report, a sweep or a search: the verdict, each data set's
compact table, where the report is."""
from __future__ import annotations

import re
from pathlib import Path

from ..factorial import sentence
from .rows import aligned, compact_rows
from .section import DataSection
from .words import cap_words


def _plain_text(text: str) -> str:
    """A document line for a terminal: without Markdown's bold and code marks."""
    return re.sub(r"`([^`]+)`", r"\1", re.sub(r"\*\*(.+?)\*\*", r"\1", str(text)))


def terminal_lines(sections: list[DataSection], out: Path) -> list[str]:
    """The end of a sweep, a search or ``seqbench report`` in a terminal: the verdict, one line per
    data set as summary.md has it, then each data set's compact table, then where the report is."""
    lines = []
    verdicts = [_plain_text(c.verdict) for s in sections for c in s.comparisons]
    if verdicts:
        lines.append("verdict (the best group, then each other variant's gap to the top; every pair in summary.md):")
        lines += [f"  {v}" for v in verdicts]
    for section in sections:
        if section.table.empty:
            continue
        if not section.comparisons:
            lines.append(f"{section.label}: {len(section.table)} variant{'s' if len(section.table) != 1 else ''}, "
                         f"nothing to compare")
        header, rows = compact_rows(section)
        lines.append(f"{section.label}:")
        lines += aligned(header, rows)
        cap = cap_words(section, short=True)
        if cap:
            lines.append(f"  budget: {cap}")
        for result in section.factorials:
            lines.append(f"  direction × pooling ({result.attention}): {sentence(result)}")
    lines.append(f"report: {out / 'summary.md'}")
    lines.append(f"        {out / 'report.html'}")
    return lines
