"""A report as a list of blocks (headings, paragraphs, tables, figures, lists), rendered once as
Markdown (``summary.md``) and once as a self-contained HTML page (``report.html``: figures
embedded, tables sortable by a click on a column, readable offline and attachable to an e-mail)."""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Block:
    kind: str                    # heading | text | table | figure | list | raw_markdown
    content: object
    level: int = 2
    css: str = ""


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(Block("heading", text, level))

    def text(self, text: str, css: str = "") -> None:
        if text:
            self.blocks.append(Block("text", text, css=css))

    def table(self, header: list[str], rows: list[list[str]], css: str = "", key: int | None = None) -> None:
        """``key``: how many columns, from the left, a reader needs; in the HTML page the others are
        behind a toggle ("all N columns"), so a wide table neither scrolls nor hides its point."""
        self.blocks.append(Block("table", (header, rows, key), css=css))

    def figure(self, path: Path, alt: str) -> None:
        self.blocks.append(Block("figure", (Path(path), alt)))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(Block("list", items))

    def folded(self, summary: str, panels: list[tuple[str, list[str], list[list[str]]]], markdown: str) -> None:
        """Small tables (caption, header, rows) side by side behind a click in the HTML page
        (``<details>``); one line (``markdown``) in summary.md, which stays short."""
        self.blocks.append(Block("folded", (summary, panels, markdown)))

    def markdown(self, text: str) -> None:
        """Markdown from elsewhere (a search's studies table), shown as it is."""
        self.blocks.append(Block("raw_markdown", text))

    # ------------------------------------------------------------------------------ renderers
    def to_markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for block in self.blocks:
            if block.kind == "heading":
                lines += [f"{'#' * block.level} {block.content}", ""]
            elif block.kind == "text":
                lines += [block.content, ""]
            elif block.kind == "table":
                header, rows, _ = block.content
                lines.append("| " + " | ".join(str(h) for h in header) + " |")
                lines.append("|" + "|".join(" --- " for _ in header) + "|")
                lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
                lines.append("")
            elif block.kind == "figure":
                path, alt = block.content
                lines += [f"![{alt}]({path.name})", ""]
            elif block.kind == "list":
                lines += [f"- {item}" for item in block.content] + [""]
            elif block.kind == "raw_markdown":
                lines += [block.content, ""]
            elif block.kind == "folded":
                lines += [block.content[2], ""]
        return "\n".join(lines)

    def to_html(self) -> str:
        body = [f"<h1>{_inline(self.title)}</h1>"]
        for block in self.blocks:
            if block.kind == "heading":
                level = min(6, block.level)
                anchor = re.sub(r"[^a-z0-9]+", "-", str(block.content).lower()).strip("-")
                body.append(f'<h{level} id="{anchor}">{_inline(block.content)}</h{level}>')
            elif block.kind == "text":
                body.append(f'<p class="{block.css}">{_inline(block.content)}</p>')
            elif block.kind == "table":
                header, rows, key = block.content
                folded = key is not None and key < len(header)

                def more(i):
                    return ' class="more"' if folded and i >= key else ""
                head = "".join(f"<th{more(i)}>{_inline(h)}</th>" for i, h in enumerate(header))
                cells = "".join("<tr>" + "".join(f"<td{more(i)}>{_inline(str(c))}</td>" for i, c in enumerate(row))
                                + "</tr>" for row in rows)
                if folded:
                    body.append(f'<button class="toggle" type="button" data-more="all {len(header)} columns" '
                                f'data-less="the {key} key columns">all {len(header)} columns</button>')
                body.append(f'<table class="sortable {"folded " if folded else ""}{block.css}"><thead><tr>{head}'
                            f"</tr></thead><tbody>{cells}</tbody></table>")
            elif block.kind == "figure":
                path, alt = block.content
                if path.is_file():
                    data = base64.b64encode(path.read_bytes()).decode()
                    body.append(f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
                                f"<figcaption>{html.escape(alt)}</figcaption></figure>")
            elif block.kind == "list":
                body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.content) + "</ul>")
            elif block.kind == "raw_markdown":
                body.append(_markdown_to_html(block.content))
            elif block.kind == "folded":
                summary, panels, _ = block.content
                tables = "".join(
                    f'<table class="small"><caption>{_inline(caption)}</caption><thead><tr>'
                    + "".join(f"<th>{_inline(h)}</th>" for h in header) + "</tr></thead><tbody>"
                    + "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in row) + "</tr>" for row in rows)
                    + "</tbody></table>" for caption, header, rows in panels)
                body.append(f'<details><summary>{_inline(summary)}</summary><div class="panels">{tables}</div>'
                            f"</details>")
        return _PAGE.format(title=html.escape(self.title), body="\n".join(body))


def _inline(text) -> str:
    """Markdown's inline marks (bold, code) as HTML; everything else escaped."""
    escaped = html.escape(str(text))
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", escaped)   # *majority class*
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _markdown_to_html(text: str) -> str:
    """Enough Markdown for the studies table: headings, pipe tables and paragraphs."""
    out, table = [], []

    def flush():
        if table:
            header, *rows = [row for row in table if not re.match(r"^\|\s*-", row)]
            cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in [header, *rows]]
            out.append('<table class="sortable"><thead><tr>' + "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
                       + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row)
                                                          + "</tr>" for row in cells[1:]) + "</tbody></table>")
            table.clear()
    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        heading = re.match(r"^(#+)\s+(.*)", line)
        if heading:
            level = min(6, len(heading[1]) + 1)
            out.append(f"<h{level}>{_inline(heading[2])}</h{level}>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }}
h1 {{ border-bottom: 2px solid #1f4e8c; padding-bottom: .2em; }}
h2 {{ border-bottom: 1px solid #ccc; margin-top: 2em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.85em; display: block; overflow-x: auto; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; white-space: nowrap; }}
th {{ background: #eef2f7; cursor: pointer; position: sticky; top: 0; }}
th.sorted-asc::after {{ content: " ▲"; }} th.sorted-desc::after {{ content: " ▼"; }}
tbody tr:nth-child(even) {{ background: #fafafa; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} figcaption {{ font-size: .8em; color: #666; }}
code {{ background: #f3f3f3; padding: 0 3px; }}
p.verdict {{ background: #f4f8ee; border-left: 4px solid #5a8f29; padding: .5em .8em; }}
p.warning {{ background: #fff4e5; border-left: 4px solid #d2691e; padding: .5em .8em; }}
table.folded .more {{ display: none; }}
details {{ margin: 1em 0; }} summary {{ cursor: pointer; color: #1f4e8c; }}
div.panels {{ display: flex; flex-wrap: wrap; gap: 0 1.2em; }}
table.small {{ font-size: 0.72em; margin: .6em 0; }} table.small th {{ position: static; cursor: default; }}
table.small td, table.small th {{ padding: 1px 4px; text-align: right; }}
caption {{ text-align: left; font-weight: 600; white-space: nowrap; }}
button.toggle {{ font-size: .8em; margin: .6em 0 -.6em; cursor: pointer; background: #eef2f7; border: 1px solid #ccc;
                border-radius: 3px; padding: 1px 8px; }}
</style></head>
<body>
{body}
<script>
// "all N columns": the columns a reader does not need first, shown or folded again.
document.querySelectorAll("button.toggle").forEach(function (button) {{
  button.addEventListener("click", function () {{
    var table = button.nextElementSibling;
    var folded = table.classList.toggle("folded");
    button.textContent = folded ? button.dataset.more : button.dataset.less;
  }});
}});
// Sort a table by the clicked column: numbers as numbers (the first number in a cell), else text.
document.querySelectorAll("table.sortable").forEach(function (table) {{
  table.querySelectorAll("th").forEach(function (th, column) {{
    th.addEventListener("click", function () {{
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var ascending = !th.classList.contains("sorted-asc");
      table.querySelectorAll("th").forEach(function (h) {{ h.classList.remove("sorted-asc", "sorted-desc"); }});
      th.classList.add(ascending ? "sorted-asc" : "sorted-desc");
      function key(row) {{
        var text = row.cells[column] ? row.cells[column].textContent : "";
        var number = text.replace(/[\\u2212\\u2013]/g, "-").match(/-?\\d+(\\.\\d+)?(e[-+]?\\d+)?/i);
        return number ? parseFloat(number[0]) : text.toLowerCase();
      }}
      rows.sort(function (a, b) {{
        var x = key(a), y = key(b);
        if (typeof x === typeof y) {{ return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1); }}
        return typeof x === "number" ? -1 : 1;
      }});
      rows.forEach(function (row) {{ body.appendChild(row); }});
    }});
  }});
}});
</script>
</body></html>
"""
