"""Ingest plus the server's own check of a package: what every path that stores a package runs.

scenes.ingest validates and converts a package without the live engine;
a challenge's conditions can only be tried by the engine (realtime.challenges),
so uploads (server.ingest_worker), the bundled samples (server.node) and
`amaliy scenes check` go through here and get one report.
"""

from __future__ import annotations

from pathlib import Path

from realtime.challenges import spawn_check
from scenes.ingest import IngestLimits, Processed, ingest_zip
from scenes.report import PackageRejected


def ingest_package(path: Path, limits: IngestLimits | None = None) -> Processed:
    """ingest_zip, then refuse a challenge with a step or mistake that holds at spawn."""
    processed = ingest_zip(path, limits)
    problems = spawn_check.problems(processed.server)
    if problems:
        raise PackageRejected(problems)
    return processed
