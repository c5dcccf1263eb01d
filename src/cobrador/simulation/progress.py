"""The progress bar of `cobrador simulate`: the simulated day and date, the wall time so far and an
estimate of what is left, on stderr (the report goes to stdout), drawn by rich.

    with progress_bar(options) as progress:
        progress.stage("migrating the database")
        simulation = Simulation(options, progress=progress).run()  # calls progress.reached(moment)

On a stderr that is not a terminal (a pipe, a log file) nothing is drawn, unless the console given says
it is one.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

DAY = timedelta(days=1)


class SimulationProgress:
    """Where the walk is: `reached(moment)` after each step of simulated time."""

    def __init__(self, progress: Progress | None, start: datetime, days: int):
        self.progress, self.start, self.days = progress, start, days
        self.task = None if progress is None else progress.add_task("", total=days, where="starting")

    def stage(self, text: str) -> None:
        """What is being done before the simulated time starts to move (migrating, setting up)."""
        if self.progress is not None:
            self.progress.update(self.task, where=text)

    def reached(self, moment: datetime) -> None:
        if self.progress is None:
            return
        elapsed = min(max((moment - self.start) / DAY, 0.0), float(self.days))
        day = min(int(elapsed) + 1, self.days)
        self.progress.update(self.task, completed=elapsed, where=f"day {day}/{self.days} {moment:%Y-%m-%d %H:%M} UTC")


@contextmanager
def progress_bar(*, start: datetime, days: int, show: bool = True,
                 console: Console | None = None) -> Iterator[SimulationProgress]:
    console = console or Console(stderr=True)
    if not show or not console.is_terminal:
        yield SimulationProgress(None, start, days)
        return
    columns = (TextColumn("{task.fields[where]}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, refresh_per_second=4) as progress:
        yield SimulationProgress(progress, start, days)
