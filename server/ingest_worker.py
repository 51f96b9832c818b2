"""One ingest job in a process of its own: ``python -m server.ingest_worker``.

The node keeps a few of these started and idle (imports done), hands each one
job, and lets it exit after it (see server.ingest_pool). Running every upload in
a fresh process under limits is what bounds what a hostile or careless package
can cost: the job's memory is capped by RLIMIT_DATA (heap and anonymous maps,
not the shared libraries), its CPU time by RLIMIT_CPU (the pool also kills it
on a wall-clock deadline), it runs at a lower priority than the rooms, and
whatever it allocated is returned to the system when it exits.

The pipe protocol is one length-prefixed pickle each way, between this module
and server.ingest_pool only: the job ``(package path, blobs folder, limits)``
in, then ``("ok", Staged, peak_rss_kb)`` or ``("rejected", [Problem], peak_rss_kb)``
out. Every outcome a package can cause is a rejection in the designer's words;
only a bug of ours is reported as ``("error", one line, peak_rss_kb)``.
"""

from __future__ import annotations

import os

# Numerical libraries start one thread per core at import; an ingest job needs one.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import pickle  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import IO, Any  # noqa: E402

from scenes.ingest import IngestLimits  # noqa: E402
from scenes.report import PackageRejected, Problem, one_line  # noqa: E402
from scenes.store import Blobs  # noqa: E402
from server.ingest_pool import FRAME  # noqa: E402
from server.package_check import ingest_package  # noqa: E402
#: niceness added to the worker: rooms tick on the node's process and must win the CPU
NICENESS = 10


def write_message(out: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(FRAME.pack(len(data)) + data)
    out.flush()


def read_message(source: IO[bytes]) -> Any:
    head = source.read(FRAME.size)
    if len(head) < FRAME.size:
        raise EOFError("the other side closed the pipe")
    return pickle.loads(source.read(FRAME.unpack(head)[0]))


def _peak_rss_kb() -> int:
    """This process's own peak RSS. Linux's ru_maxrss would also count the parent's at fork
    (the node's, or a benchmark's), so the high-water mark of this memory map is read instead."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _out_of_memory(limit_mb: int) -> Problem:
    return Problem(
        "package",
        f"needs more than the {limit_mb} MB of memory one package may use while it is checked",
        "reduce the meshes (triangles, vertices) and textures, or split the lab into several packages",
    )


def run_job(package: Path, blobs: Path, limits: IngestLimits, memory_mb: int) -> tuple[str, Any]:
    """Ingest and stage one package; the outcome as the pipe protocol's (kind, payload)."""
    try:
        return "ok", Blobs(blobs).stage(ingest_package(package, limits), package)
    except PackageRejected as exc:
        return "rejected", exc.problems
    except MemoryError:  # the one error ingest_zip lets through: the limit is this process's
        return "rejected", [_out_of_memory(memory_mb)]
    except Exception as exc:  # a bug of ours: the operator's log gets one line, the designer a plain refusal
        return "error", one_line(exc)


def main() -> None:
    memory_mb, cpu_seconds = int(sys.argv[1]), int(sys.argv[2])
    os.nice(NICENESS)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing a library prints may corrupt the result pipe
    write_message(stdout, "ready")
    try:
        package, blobs, limits = read_message(stdin)
    except EOFError:
        return  # the node stopped before giving this spare a job
    # Limits apply from the job on: imports above are shared by every job and stay outside them.
    data = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    used = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime)
    resource.setrlimit(resource.RLIMIT_CPU, (used + cpu_seconds, used + cpu_seconds + 5))
    kind, payload = run_job(package, blobs, limits, memory_mb)
    write_message(stdout, (kind, payload, _peak_rss_kb()))


if __name__ == "__main__":
    main()
