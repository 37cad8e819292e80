"""What a job returns: its name, its seconds and the lines its run summary prints.

Kept apart from the jobs themselves so that a command imports only the job it runs (the CLI's
start-up is the time of its imports)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class JobResult:
    """What a job did, as the lines the run summary prints."""

    name: str
    seconds: float
    lines: list[str]

    def render(self) -> str:
        return "\n".join([f"== {self.name} ({self.seconds:.1f} s)", *self.lines])
