"""Display names: what the people of a classroom type is kept (normalised); what would not
show honestly is refused with a sentence."""

from __future__ import annotations

import unicodedata

import pytest

from realtime.names import MAX_LENGTH, NameRefused, display_name


@pytest.mark.parametrize(
    "typed,kept",
    [
        ("Aziza", "Aziza"),
        ("\t Aziza   Karimova\n", "Aziza Karimova"),  # trimmed, inner run of spaces collapsed
        ("Oʻtkir Gʻulomov", "Oʻtkir Gʻulomov"),  # Uzbek Latin with the modifier-letter okina
        ("Ўткир Ҳамидов", "Ўткир Ҳамидов"),  # Uzbek Cyrillic
        ("محمد علي", "محمد علي"),  # Arabic
        ("می\u200cخواهم", "می\u200cخواهم"),  # Persian needs ZWNJ between letters
        ("क्\u200dष", "क्\u200dष"),  # Devanagari: ZWJ after a virama
        ("李小龍", "李小龍"),
        ("김\u3000민준", "김 민준"),  # an ideographic space is a space
        ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"),  # an emoji ZWJ sequence
        ("🏳\ufe0f\u200d🌈", "🏳\ufe0f\u200d🌈"),  # ZWJ after a variation selector
        ("Jose\u0301", "José"),  # NFC: one character, as a reader counts it
        ("x" * MAX_LENGTH, "x" * MAX_LENGTH),
    ],
)
def test_names_people_type_are_kept(typed: str, kept: str) -> None:
    assert display_name(typed) == kept
    assert display_name(kept) == kept  # normalising twice changes nothing


@pytest.mark.parametrize(
    "typed,because",
    [
        ("a\x00b", "U+0000: that is a control character"),
        ("bell\x07", "control character"),
        ("\x1b[31mred", "control character"),
        ("two\nlines", "control character"),
        ("tab\tinside", "control character"),  # only surrounding whitespace is trimmed
        ("two\u2028lines", "LINE SEPARATOR"),
        ("evil\u202etxt.exe", "RIGHT-TO-LEFT OVERRIDE"),
        ("left\u200emark", "LEFT-TO-RIGHT MARK"),
        ("a\u200bb", "ZERO WIDTH SPACE"),
        ("\ufeffbom", "ZERO WIDTH NO-BREAK SPACE"),
        ("soft\u00adhyphen", "SOFT HYPHEN"),
        ("\u200d", "ZERO WIDTH JOINER"),  # a joiner with nothing to join
        ("a\u200d", "ZERO WIDTH JOINER"),
        ("a \u200c b", "ZERO WIDTH NON-JOINER"),
        ("a\u200d\u200db", "ZERO WIDTH JOINER"),
        ("flag\U000e0067", "TAG LATIN SMALL LETTER G"),
        ("\ud800", "U+D800: that is half of a UTF-16 surrogate pair"),
        ("pua\ue000", "private-use"),
        ("\U0010fffd", "private-use"),
        ("new\u0378", "unassigned"),
    ],
)
def test_characters_that_hide_or_break_text_are_refused(typed: str, because: str) -> None:
    with pytest.raises(NameRefused) as refused:
        display_name(typed)
    assert because in str(refused.value) and str(refused.value).endswith(".")


@pytest.mark.parametrize("typed", ["", "   ", "\t\n", "\u3000", "\u0301\u0302", "\u3164", "\u115f\u1160", "\u2800", " \u00a0 "])
def test_invisible_names_are_refused(typed: str) -> None:
    with pytest.raises(NameRefused, match="at least one visible character"):
        display_name(typed)


def test_the_length_counts_after_normalisation() -> None:
    assert display_name("  " + "x" * MAX_LENGTH + "  ") == "x" * MAX_LENGTH
    assert display_name(("e\u0301" * MAX_LENGTH)) == "é" * MAX_LENGTH  # 80 code points typed, 40 kept
    with pytest.raises(NameRefused, match=f"at most {MAX_LENGTH} characters long; this one has {MAX_LENGTH + 1}"):
        display_name("x" * (MAX_LENGTH + 1))
    assert display_name("x" * 60, max_length=60) == "x" * 60


def test_what_is_kept_has_no_refused_character_and_encodes() -> None:
    for char in map(chr, range(0x30000)):  # every code point of the first three planes, alone and in a name
        for typed in (char, f"a{char}b"):
            try:
                kept = display_name(typed)
            except NameRefused:
                continue
            kept.encode("utf-8")  # a token, the database and the logs can hold it
            for c in kept:
                assert unicodedata.category(c) not in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp"), (typed, c)
                assert unicodedata.category(c) != "Cf" or c in "\u200c\u200d", (typed, c)
