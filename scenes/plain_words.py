"""Turn what a library raised into words for the designer who uploaded the package.

Loaders' messages name the server's private folder (``/tmp/amaliy-ingest-...``),
carry ``[Errno 17]`` prefixes, or are empty (a bare ``assert``); none of that
helps a designer and the folder is none of their business. Every message that
leaves ingest goes through here.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

from scenes.report import Problem

_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
_OS_ERRORS = {
    errno.EEXIST: "a file and a folder in the package have the same name",
    errno.ENOTDIR: "a file and a folder in the package have the same name",
    errno.ENOENT: "a file it needs is missing",
    errno.EISDIR: "it names a folder where a file is needed",
    errno.ENAMETOOLONG: "a file name is too long",
    errno.ENOSPC: "the server ran out of disk space (try again later)",
}
#: words for exceptions that usually come without a message
_EMPTY = {
    AssertionError: "its internal structure is inconsistent",
    IndexError: "a number in it points past the end of a list",
    MemoryError: "it needs more memory than the server allows",
}
_MAX_CHARS = 300


def scrub(text: str, root: Path) -> str:
    """``text`` with the private folder ``root`` and errno prefixes taken out."""
    for folder in {str(root.resolve()), str(root)}:
        text = text.replace(folder + "/", "").replace(folder, "the package")
    return _ERRNO.sub("", text)


def scrub_problem(problem: Problem, root: Path) -> Problem:
    return Problem(*(scrub(part, root) for part in problem))


def plain_words(exc: BaseException, root: Path) -> str:
    """What went wrong, from a loader's exception, without paths, errno codes or library jargon."""
    if isinstance(exc, OSError) and exc.errno in _OS_ERRORS:
        text = _OS_ERRORS[exc.errno]
        return f"{text} ({scrub(exc.filename, root)})" if isinstance(exc.filename, str) else text
    if isinstance(exc, KeyError) and exc.args:
        return f"a required field {exc.args[0]!r} is missing"
    text = scrub(str(exc), root).strip()
    if not text:
        kind = next((words for cls, words in _EMPTY.items() if isinstance(exc, cls)), None)
        # 'ValueError' -> 'value error'
        text = kind or re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__).lower()
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"
