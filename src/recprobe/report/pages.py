"""HTML for the report: one layout, an overview page and one page per latent. Every value is escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

STYLE = """
:root { --fg: #1d2330; --muted: #6b7280; --accent: #3b5bdb; --line: #e5e7eb; --bg: #f8f9fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 14px 32px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 2px 0 0; color: var(--muted); }
main { max-width: 1180px; margin: 0 auto; padding: 20px 32px 48px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; }
.card h2 { font-size: 15px; margin: 0 0 10px; }
.kpis { display: flex; flex-wrap: wrap; gap: 18px; } .kpi b { display: block; font-size: 22px; }
.kpi span, .muted { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
svg.chart { width: 100%; max-width: 520px; height: auto; font-size: 11px; fill: var(--muted); }
svg.chart rect { fill: var(--accent); opacity: 0.8; } svg.chart line { stroke: var(--line); }
.level { display: inline-block; min-width: 24px; text-align: center; border-radius: 4px; background: #e7ecff; }
.wide { grid-column: 1 / -1; }
"""


def page(title: str, subtitle: str, body: str, root: str = "") -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="{root}style.css"></head><body><header><h1>{escape(title)}</h1>'
            f'<p>{escape(subtitle)} · <a href="{root}index.html">overview</a></p></header><main>{body}</main></body></html>')


def card(title: str, content: str, wide: bool = False) -> str:
    return f'<section class="card{" wide" if wide else ""}"><h2>{escape(title)}</h2>{content}</section>'


def kpis(items: Iterable[tuple[str, str]]) -> str:
    return '<div class="kpis">' + "".join(f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>'
                                          for k, v in items) + "</div>"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """Rows of cells; a cell that is already HTML is passed as ``Markup``."""
    head = "".join(f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="num">{_cell(c)}</td>' if i in numeric else f"<td>{_cell(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Markup(str):
    """A string that is already safe HTML."""


def link(href: str, text: str) -> Markup:
    return Markup(f'<a href="{escape(href)}">{escape(text)}</a>')


def _cell(value: Any) -> str:
    if isinstance(value, Markup):
        return value
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape("" if value is None else str(value))
