"""Roster CSV: decoding (UTF-8, BOM, Windows-1251), the per-line report, all-or-nothing, and the export's escaping."""

from __future__ import annotations

import csv
import io

import pytest

from server import roster
from server.roster import RosterRejected, read_roster
from server.store import Student

UZBEK = "Oʻktam Gʻaniyev"
RUSSIAN = "Иван Петров"


def rows_of(data: bytes, existing: list[Student] | None = None) -> list[tuple[str, str | None, str | None]]:
    return [(r.name, r.email, r.student_number) for r in read_roster(data, existing or [])]


def rejected(data: bytes, existing: list[Student] | None = None) -> RosterRejected:
    with pytest.raises(RosterRejected) as caught:
        read_roster(data, existing or [])
    return caught.value


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_unicode_files_keep_uzbek_and_cyrillic_names_exactly(encoding: str) -> None:
    text = f"name,email,student_number\r\n{UZBEK},oktam@maktab.uz,9A-01\r\n{RUSSIAN},,\r\n"
    assert rows_of(text.encode(encoding)) == [(UZBEK, "oktam@maktab.uz", "9A-01"), (RUSSIAN, None, None)]


def test_a_windows_1251_file_with_semicolons_and_russian_headers_is_read() -> None:
    data = f"ФИО;Почта;Номер\r\n{RUSSIAN};ivan@mail.ru;17\r\nОльга Ким;;\r\n".encode("cp1251")
    assert rows_of(data) == [(RUSSIAN, "ivan@mail.ru", "17"), ("Ольга Ким", None, None)]


def test_headers_are_case_insensitive_and_uzbek_words_count() -> None:
    assert rows_of("ISM,Elektron pochta\nAli,ali@x.uz\n".encode()) == [("Ali", "ali@x.uz", None)]
    assert rows_of(b"Student_Number,Name\n42,Bea\n") == [("Bea", None, "42")]


def test_a_header_without_a_name_column_or_with_unknown_columns_is_refused() -> None:
    assert rejected(b"email\na@b.uz\n").problems == [(1, "No name column.")]
    assert "Unknown column 'age'" in rejected(b"name,age\nAli,12\n").problems[0][1]
    assert "empty" in rejected(b"").summary


def test_every_bad_row_is_named_by_line_and_nothing_is_returned() -> None:
    data = "\n".join([
        "name,email,student_number",
        "Ali,,",            # 2 fine
        ",x@y.uz,",         # 3 empty name
        "Bea,not-an-email,",  # 4 malformed email
        "Ali,,",            # 5 duplicate of line 2
        "Ca\u202ern,,",      # 6 bidi override: refused by realtime.names
        "",                 # 7 a blank line is skipped
        "Dan,,5,extra",     # 8 too many cells
        "Eve,,",            # 9 fine
    ]).encode()
    problems = dict(rejected(data).problems)
    assert sorted(problems) == [3, 4, 5, 6, 8]
    assert problems[3] == "The name is empty."
    assert "'not-an-email' is not an email address" in problems[4]
    assert "already on line 2" in problems[5] and "student numbers" in problems[5]
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in problems[6]
    assert "4 cells" in problems[8]
    assert rejected(data).summary.startswith("Nothing was imported: 5 of 7 rows have problems")


def test_duplicates_of_the_roster_and_same_names_with_numbers() -> None:
    existing = [Student("st_1", "c_1", "Ali", "ali@x.uz", None), Student("st_2", "c_1", "Bea", None, "7")]
    problems = dict(rejected(b"name,email,student_number\nali,,\nZed,ALI@x.uz,\nBea2,,7\n", existing).problems)
    assert "already on the roster" in problems[2] and "already on the roster" in problems[3] and "'7'" in problems[4]
    # two students of one name are fine when their numbers tell them apart
    assert rows_of(b"name,student_number\nBea,8\nBea,9\n", existing) == [("Bea", None, "8"), ("Bea", None, "9")]


def test_a_formula_is_stored_as_typed_and_escaped_on_export() -> None:
    [(name, _, _)] = rows_of(b"name\n=CMD(\"calc\")\n")
    assert name == '=CMD("calc")'
    table = roster.to_csv([Student("st_1", "c_1", name, "@x.uz", "+1"), Student("st_2", "c_1", UZBEK)])
    rows = list(csv.reader(io.StringIO(table.removeprefix("\ufeff"))))
    assert rows == [["name", "email", "student_number", "id"], ["'=CMD(\"calc\")", "'@x.uz", "'+1", "st_1"], [UZBEK, "", "", "st_2"]]


def test_limits_on_size_and_rows_are_clear() -> None:
    big = b"name\n" + b"x" * roster.MAX_BYTES
    assert "at most 1048576" in rejected(big).summary
    many = ("name\n" + "".join(f"S{i}\n" for i in range(roster.MAX_ROWS + 1))).encode()
    assert f"at most {roster.MAX_ROWS}" in rejected(many).summary
    existing = [Student(f"st_{i}", "c", f"E{i}") for i in range(roster.MAX_ROWS)]
    assert "a course may have at most" in rejected(b"name\nNew\n", existing).summary


def test_names_are_normalised_like_join_names() -> None:
    assert rows_of("name\n  Ali   Valiyev \n".encode()) == [("Ali Valiyev", None, None)]
