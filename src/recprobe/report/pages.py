"""The report's pages: Jinja2 templates (``templates/``) with autoescape on, so every text from the data (titles,
attributes, descriptions, paths) is escaped in one place, and its stylesheet."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

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
svg.chart.heatmap { max-width: 100%; font-size: 9px; }
.level { display: inline-block; min-width: 24px; text-align: center; border-radius: 4px; background: #e7ecff; }
.wide { grid-column: 1 / -1; }
"""


TEMPLATES = Environment(loader=PackageLoader("recprobe.report", "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context: Any) -> str:
    """A page from ``templates/``; autoescape is on, so every value the page shows is escaped here, once."""
    return TEMPLATES.get_template(template).render(**context)


def link(href: str, text: str) -> dict[str, str]:
    """A table cell that links (the template escapes both parts)."""
    return {"href": href, "text": text}


def level(value: int) -> dict[str, int]:
    """A table cell showing a case's level as a badge."""
    return {"level": value}
