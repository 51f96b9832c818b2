"""One problem found in a scene package, and the error that carries them all.

Ingest never stops at the first problem: a designer gets one report listing
every problem, each naming where it is (a file, a JSON path or a mesh), what is
wrong, and how to fix it.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import NamedTuple


class Problem(NamedTuple):
    where: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} (fix: {self.fix})"


class PackageRejected(Exception):
    """The package was refused; nothing was stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the scene package")
        self.problems = problems

    def __reduce__(self) -> tuple[type, tuple[list[Problem]]]:
        # keep the problems when the error crosses from the ingest process
        return (PackageRejected, (self.problems,))

    def report(self) -> list[dict[str, str]]:
        return [problem._asdict() for problem in self.problems]


def one_line(exc: BaseException) -> str:
    """An unexpected error (a bug of ours) as one log line: what failed and where, without the traceback."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}: {str(exc)[:200]}"
