"""Progress bars for the long commands (archive import, backup, key rotation, retention purge).

rich draws them on standard error when that is a terminal, and stays silent otherwise (a timer's
journal, a pipe, the tests' runner), so a command's printed results read the same everywhere.
Each bar counts rows, values or bytes, never names anything in them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[[int], None]


def console() -> Console:
    """The console bars draw on (a function, so a test can give one that is a terminal)."""
    return Console(stderr=True)


class Bars:
    """One rich Progress for a command, with a bar (a task) per step."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def step(self, description: str, total: int | None = None) -> Advance:
        """A bar for one step; ``total`` None draws a pulsing bar with the count so far."""
        if self._progress is None:
            return lambda _n: None
        task = self._progress.add_task(description, total=total)
        progress = self._progress
        return lambda n: progress.advance(task, n)


@contextmanager
def bars(unit: str = "rows") -> Iterator[Bars]:
    """``with bars("bytes") as b: advance = b.step("Encrypting", total)``. Silent off a terminal."""
    shown = console()
    if not shown.is_terminal:
        yield Bars(None)
        return
    count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), count,
                  TextColumn(unit if unit != "bytes" else ""), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=shown) as progress:
        yield Bars(progress)
