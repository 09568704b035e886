"""Small HTML building blocks: every text passes :func:`esc`, every image is inline.

Nothing here references the network or another file: images are ``data:`` URIs of PNG
bytes and the style sheet sits in the page, so one file is the whole report.

Example:
    >>> esc('<script>alert("x")</script>')
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    >>> table(["a", "b"], [[1, "<b>"]])
    '<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>&lt;b&gt;</td></tr></tbody></table>'
"""

from __future__ import annotations

import base64
import html as _html
from typing import Any, Sequence

__all__ = ["esc", "img", "table", "kv_table", "section", "page", "fmt", "Raw"]


class Raw(str):
    """Markup built here (already escaped): :func:`table` passes it through unchanged."""


def esc(value: Any) -> str:
    """HTML-escape any value's text (quotes included, so it is safe in attributes too)."""
    return _html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A value as the tables show it: floats to 4 significant places, ints with commas."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def img(png: bytes, alt: str) -> Raw:
    """An inline PNG image (base64 ``data:`` URI)."""
    data = base64.b64encode(png).decode("ascii")
    return Raw(f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">')


def _cell(value: Any) -> str:
    return value if isinstance(value, Raw) else esc(fmt(value))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "") -> Raw:
    """A table; cells are escaped unless they are :class:`Raw`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    cls = f' class="{esc(css)}"' if css else ""
    return Raw(f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def kv_table(rows: Sequence[Sequence[Any]]) -> Raw:
    """A two-column key/value table with no header row (cells escaped unless Raw)."""
    body = "".join(f"<tr><th>{_cell(k)}</th><td>{_cell(v)}</td></tr>" for k, v in rows)
    return Raw(f'<table class="kv"><tbody>{body}</tbody></table>')


def section(title: str, *parts: str, anchor: str = "") -> Raw:
    """A titled section; ``parts`` must already be markup (escape text with :func:`esc`)."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return Raw(f"<section{ident}><h2>{esc(title)}</h2>{''.join(parts)}</section>")


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}table.kv th{font-weight:normal;width:45%}td.num,th.num{text-align:right}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;
flex:1 1 320px}.card table{font-size:.85em}.note{color:#666;font-size:.9em}
.tokens span{padding:.1em .2em;margin:.05em;border-radius:3px;display:inline-block}
nav a{margin-right:1em}
"""


def page(title: str, body: str, subtitle: str = "") -> str:
    """The complete document: inline style, no script, no external reference."""
    sub = f'<p class="note">{esc(subtitle)}</p>' if subtitle else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<link rel=\"icon\" href=\"data:,\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{esc(title)}</h1>{sub}{body}</body></html>\n")
