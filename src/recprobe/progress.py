"""One progress bar for every stage longer than a few seconds: what it does, how far it is, its rate and the
time left (rich; transient, so the finished stage leaves only its own result lines)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Units per second, once there is a rate to show."""

    def __init__(self, unit: str = "it"):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f} {task.fields.get('unit', self.unit)}/s", style="dim")


def stage_bar(enabled: bool = True, *, info: TextColumn | None = None, transient: bool = True) -> Progress:
    """The bar: description, bar, done/total, rate, elapsed, time left (and ``info``, a column of the caller's)."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn()]
    return Progress(*columns, *([info] if info is not None else []), disable=not enabled, transient=transient)
