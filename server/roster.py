"""Roster CSV: decode what a spreadsheet saved, check every row, and write the roster back out.

Pure functions, no store: ``read_roster`` turns the bytes of an upload into rows to add, or
raises RosterRejected with one report naming every bad row by its line number, so the
caller imports all of a file or none of it (docs/operations.md, "Courses and sign-in").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

from realtime.names import NameRefused, display_name
from server.results import csv_cell
from server.store import Student

#: Largest roster file accepted, in bytes, and most students in one file (and on one roster).
MAX_BYTES = 1024 * 1024
MAX_ROWS = 5000
MAX_NUMBER_LENGTH = 40
MAX_EMAIL_LENGTH = 254

_EMAIL = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]{2,}")

#: Header words per column, compared after case folding and turning ``_``/``-``/``.`` into spaces.
HEADERS: dict[str, frozenset[str]] = {
    "name": frozenset({"name", "full name", "student", "student name", "ism", "ismi", "ism familiya", "f i sh", "fish",
                       "talaba", "oʻquvchi", "o'quvchi", "имя", "фио", "ф и о", "ученик", "студент"}),
    "email": frozenset({"email", "e mail", "mail", "pochta", "elektron pochta", "почта", "эл почта", "электронная почта"}),
    "student_number": frozenset({"student number", "number", "student id", "id", "no", "raqam", "raqami", "talaba raqami",
                                 "номер", "номер студента", "студенческий номер"}),
}


class RosterRejected(Exception):
    """The file is refused as a whole: ``problems`` is (line, sentence) for each bad row."""

    def __init__(self, summary: str, problems: list[tuple[int, str]] | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.problems = problems or []

    def report(self) -> dict[str, object]:
        return {"detail": self.summary, "problems": [{"line": line, "problem": text} for line, text in self.problems]}


@dataclass(frozen=True)
class RosterRow:
    line: int
    name: str
    email: str | None
    student_number: str | None


def decode(data: bytes) -> str:
    """The text of a roster file: UTF-8 (with or without a byte order mark), UTF-16 with a byte
    order mark, else Windows-1251 (what Excel saves as "CSV" on a Russian-locale Windows)."""
    marked = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else None
    if marked is not None:
        try:
            return data.decode(marked)
        except UnicodeDecodeError:  # a byte order mark, then bytes that are not that encoding
            raise RosterRejected(
                f"The file starts as {'UTF-8' if marked == 'utf-8-sig' else 'UTF-16'} text but is not: "
                "save it from the spreadsheet as CSV UTF-8."
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1251")
    except UnicodeDecodeError:
        raise RosterRejected("The file is neither UTF-8 nor Windows-1251 text; save it from the spreadsheet as CSV UTF-8.") from None


def _header_key(cell: str) -> str:
    folded = re.sub(r"[_\-.]+", " ", cell.strip().casefold())
    return " ".join(folded.split())


def _columns(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    problems = []
    for index, cell in enumerate(header):
        key = _header_key(cell)
        field = next((f for f, words in HEADERS.items() if key in words), None)
        if field is None:
            if key:
                problems.append(f"unknown column {cell.strip()!r}")
            continue
        if field in columns:
            problems.append(f"column {field} appears twice")
        columns[field] = index
    if "name" not in columns:
        problems.append("no name column")
    if problems:
        raise RosterRejected(
            "The header row (line 1) must name the columns: name, and optionally email and student_number"
            f" ({'; '.join(problems)}).",
            [(1, _sentence("; ".join(problems)))],
        )
    return columns


def _dialect(text: str) -> str:
    """Comma, or the semicolon (or tab) a spreadsheet in a comma-decimal locale writes instead."""
    first = text.split("\n", 1)[0]
    counts = {sep: first.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def read_roster(data: bytes, existing: Sequence[Student] = ()) -> list[RosterRow]:
    """Every row of a roster file, checked against each other and the roster ``existing``.

    Raises RosterRejected listing every bad row, so nothing is imported unless all are good.
    A row is a duplicate when its student number (if it has one) or email (if it has one) is
    already used, or, having no student number, its name is (two students with the same name
    need their student numbers)."""
    if len(data) > MAX_BYTES:
        raise RosterRejected(f"The file has {len(data)} bytes; a roster may have at most {MAX_BYTES} (1 MiB). Split it.")
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(text))
    try:
        header = next(reader, None)
        if header is None:
            raise RosterRejected("The file is empty; the first line must be a header row: name,email,student_number.")
        columns = _columns(header)
        raw = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise RosterRejected(f"The file is not valid CSV (line {reader.line_num}): {exc}.") from None
    raw = [(line, row) for line, row in raw if any(cell.strip() for cell in row)]
    if len(raw) > MAX_ROWS:
        raise RosterRejected(f"The file has {len(raw)} students; one file may have at most {MAX_ROWS}. Split it.")
    if len(existing) + len(raw) > MAX_ROWS:
        raise RosterRejected(f"The roster has {len(existing)} students and the file {len(raw)}; a course may have at most {MAX_ROWS}.")

    rows = []
    early: dict[int, list[str]] = {}
    for line, row in raw:
        def cell(field: str) -> str:
            index = columns.get(field)
            return row[index].strip() if index is not None and index < len(row) else ""

        if len(row) > len(header):
            early[line] = [f"it has {len(row)} cells but the header names {len(header)} columns"]
        rows.append(RosterRow(line, cell("name"), cell("email") or None, cell("student_number") or None))
    if not rows:
        raise RosterRejected("The file has a header row but no students.")
    return check_rows(rows, existing, early)


def check_rows(rows: list[RosterRow], existing: Sequence[Student] = (), early: dict[int, list[str]] | None = None) -> list[RosterRow]:
    """The rows with their names normalised (realtime.names), or RosterRejected naming every
    bad one: an empty or refused name, a malformed email, a duplicate in the rows or of
    ``existing``. ``early`` holds problems already found per line."""
    names = {s.name.casefold(): "the roster" for s in existing}
    numbers = {s.student_number.casefold(): "the roster" for s in existing if s.student_number}
    emails = {s.email.casefold(): "the roster" for s in existing if s.email}
    problems: list[tuple[int, str]] = []
    good: list[RosterRow] = []
    for given in rows:
        line = given.line
        why: list[str] = list((early or {}).get(line, []))
        name = given.name.strip()
        if not name:
            why.append("the name is empty")
        else:
            try:
                name = display_name(name)
            except NameRefused as exc:
                why.append(str(exc).rstrip(".").replace("A name", "the name", 1))
        email = given.email.strip() if given.email else None
        if email is not None:
            if not email.isprintable():  # a control or invisible character (U+200B, U+202E, a tab...)
                why.append(f"the email {email!r} contains an invisible character")
            elif len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
                why.append(f"{email!r} is not an email address")
        number = given.student_number.strip() if given.student_number else None
        if number is not None:
            if len(number) > MAX_NUMBER_LENGTH:
                why.append(f"the student number is longer than {MAX_NUMBER_LENGTH} characters")
            elif not number.isprintable():
                why.append("the student number contains an invisible character")
        if not why:
            checks = [(numbers, number, "student number"), (emails, email, "email")]
            if number is None:
                checks.append((names, name, "name"))
            for table, value, what in checks:
                if value is not None and value.casefold() in table:
                    why.append(f"the {what} {value!r} is already on {table[value.casefold()]}")
            if number is None and name.casefold() in names:
                why[-1] += " (two students of the same name need their student numbers)"
        if not why:
            for table, value in ((numbers, number), (emails, email), (names, name)):
                if value is not None:
                    table.setdefault(value.casefold(), f"line {line}")
        if why:
            problems.append((line, _sentence("; ".join(why))))
        else:
            good.append(RosterRow(line, name, email, number))
    if problems:
        raise RosterRejected(
            f"Nothing was imported: {len(problems)} of {len(rows)} rows have problems. Fix them and send the whole file again.",
            problems,
        )
    return good


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def to_csv(students: list[Student]) -> str:
    """The roster as a spreadsheet (UTF-8 with a byte order mark), every text cell escaped
    against formula injection by the one function results use."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["name", "email", "student_number", "id"])
    for s in students:
        writer.writerow([csv_cell(s.name), csv_cell(s.email or ""), csv_cell(s.student_number or ""), s.id])
    return out.getvalue()
