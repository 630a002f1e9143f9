"""The bar a long transfer draws on a terminal, in the units the final line uses (KiB, MiB:
Rich's own columns count in kB and MB). Imported only when a bar is drawn: Rich's progress
module costs a hook's quiet run its import."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, Task
from rich.text import Text

from claude_sync.cli.output import size


class _Speed(ProgressColumn):
    """The transfer's speed, in binary units."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "?" if speed is None else f"{size(int(speed))}/s"
        return Text(shown, style="progress.data.speed")


def transfer_bar(console: Console) -> Progress:
    """A bar that goes away once done (transient): what was done is said by the final line."""
    return Progress(
        "{task.description}",
        BarColumn(),
        DownloadColumn(binary_units=True),
        _Speed(),
        console=console,
        transient=True,
    )
