"""The page's HTML, written by small Python functions rather than templates.

Why not Jinja2 or another template engine: the page is mostly computed prose,
sentences whose numbers and clauses depend on the results, so a template
would hold little but `{{ }}` holes filled by the same Python; the escaping
is one helper, `esc`, that every value from the results files goes through
(names, settings, environment.json, transfer.json and epoch_ratio.json alike);
and the report needs no dependency beyond the benchmark's own. Numbers go
through `report.numbers`' formatters, which the number checker rebuilds.
"""

from __future__ import annotations

import html

CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{font-size:1.8em;margin-bottom:.2em;overflow-wrap:anywhere} h2{border-bottom:1px solid #ccc;margin-top:1.6em}
.authors{color:#555;font-style:italic} .abstract{background:#f6f6f6;padding:.8em 1.2em;border-left:4px solid #888}
figure{margin:1.2em 0;text-align:center} figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.9em;color:#444;text-align:left}
.scroll{overflow-x:auto;max-width:100%} table{border-collapse:collapse;font-size:.85em;margin:1em 0;width:100%}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left} .muted{color:#777} .top td{font-weight:bold}
.box{border:1px solid #bbb;background:#fafafa;padding:.6em 1em;margin:1em 0} .box dt{font-weight:bold}
.box dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0} .box dd{margin:0;overflow-wrap:anywhere}
code,pre{font-size:.85em} pre{background:#f4f4f4;padding:.6em;overflow-x:auto;white-space:pre}
.missing{border:1px dashed #c66;padding:.5em 1em;color:#633;font-size:.9em}
p code{overflow-wrap:anywhere}
"""


def esc(value) -> str:
    """Any value as page text: the one escape every value from the results files goes through."""
    return html.escape(str(value))


def table(head: list[str], rows: list[tuple[list[str], bool]]) -> str:
    """A scrolling table; `rows` are (cells, bold) with cells already escaped or formatted."""
    if not rows:
        return "<p class=muted>No rows.</p>"
    cells = "".join(f"<tr{' class=top' if top else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                    for row, top in rows)
    return ("<div class=scroll><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{cells}"
            "</table></div>")


def box(items: list[tuple[str, str]]) -> str:
    """A definition box of (term, description) pairs, both already escaped."""
    return "<div class=box><dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl></div>"


def page(body: str) -> str:
    """The whole document: no scripts, fonts or styles from the network."""
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>backbone-bench report</title><style>{CSS}</style></head><body>{body}</body></html>\n")
