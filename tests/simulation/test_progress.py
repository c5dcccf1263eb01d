"""The progress bar of `cobrador simulate`: the simulated day and date with an estimate of the time left,
drawn only on a terminal."""

import io
from datetime import UTC, datetime

from rich.console import Console

from cobrador.simulation.progress import progress_bar

START = datetime(2026, 2, 2, tzinfo=UTC)


def test_the_bar_shows_the_stage_then_the_simulated_day_and_the_time_left():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)

    with progress_bar(start=START, days=45, console=console) as progress:
        progress.stage("migrating the database")
        progress.progress.refresh()
        assert "migrating the database" in screen.getvalue()
        progress.reached(datetime(2026, 2, 13, 6, 0, tzinfo=UTC))
        progress.progress.refresh()

    drawn = screen.getvalue()
    assert "day 12/45 2026-02-13 06:00 UTC" in drawn
    assert "25%" in drawn and "left" in drawn
    task = progress.progress.tasks[0]
    assert (task.total, task.completed) == (45, 11.25)


def test_nothing_is_drawn_when_stderr_is_not_a_terminal_or_the_report_is_quiet():
    for console, show in ((Console(file=io.StringIO()), True),
                          (Console(file=io.StringIO(), force_terminal=True), False)):
        with progress_bar(start=START, days=3, show=show, console=console) as progress:
            progress.stage("migrating the database")
            progress.reached(datetime(2026, 2, 3, tzinfo=UTC))
        assert progress.progress is None
        assert console.file.getvalue() == ""
