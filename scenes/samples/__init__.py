"""Sample labs shipped with the server, generated from code and ingested like any upload."""

from __future__ import annotations

from typing import Callable

from scenes.samples import chemistry_bench, circuits_table

#: package id -> function returning the package's files
SAMPLES: dict[str, Callable[[], dict[str, bytes]]] = {
    "chemistry-bench": chemistry_bench.files,
    "circuits-table": circuits_table.files,
}
#: the lab the demo practical opens
DEMO = "chemistry-bench"
