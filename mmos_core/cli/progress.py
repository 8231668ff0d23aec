"""Rich progress bars for the `mmos` commands that take long (provisioning, `extract --wait`,
`conversations import`, `backup` / `restore`).

The modules below the CLI (`llm/local_models`, `embeddings/provision`, `storage/backup`) know nothing
of rich or typer: they call a plain `Progress` callback, `progress(label, done, total)`, and this module
renders it — one bar per label, created on its first call. rich comes with typer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: `progress(label, done, total)`: the step or item named by `label` is at `done` of `total` (the unit is
#: the caller's: parts, MB, chunks, messages, steps; the label says which). `done` never decreases for a label.
ProgressCallback = Callable[[str, int, int], None]


class BarReporter:
    """A `ProgressCallback` that draws one rich bar per label, plus `log` to print lines above the bars.

    Use as a context manager (`with BarReporter() as bars: work(progress=bars, log=bars.log)`): the bars
    are drawn while the block runs and left on screen (their final state) when it ends. On a terminal
    they refresh live; elsewhere (CI logs, CliRunner) rich prints their final state once.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> BarReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, label: str, done: int, total: int, note: str = "") -> None:
        """Move the bar of `label` to `done` / `total` (created on first sight); `note` is shown after the
        count (a cost, a status)."""
        task = self._tasks.get(label)
        if task is None:
            task = self._tasks[label] = self._progress.add_task(label, total=max(total, 0), note=note)
        self._progress.update(task, completed=done, total=max(total, 0), note=note)

    def log(self, message: str) -> None:
        """Print one line above the bars (the `log=` sink of the provisioning functions)."""
        self._progress.console.print(message, markup=False, highlight=False, soft_wrap=True)  # never re-wrapped


@contextmanager
def bars(console: Console | None = None) -> Iterator[BarReporter]:
    """`with bars() as progress:` — a started `BarReporter`, stopped at the end of the block."""
    with BarReporter(console) as reporter:
        yield reporter
