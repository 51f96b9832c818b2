"""Display names: what the people of a classroom type is kept (normalised); what would not
show honestly is refused with a sentence."""

from __future__ import annotations

import unicodedata

import pytest

from realtime.names import MAX_LENGTH, NameRefused, display_name, name_key, reserved_refusal, taken_refusal


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


@pytest.mark.parametrize("typed", ["\u303f", "\U0001d159", "a\u303f"[1:]])
def test_blank_symbols_are_invisible(typed: str) -> None:
    with pytest.raises(NameRefused, match="at least one visible character"):
        display_name(typed)


@pytest.mark.parametrize(
    "one,other",
    [
        ("Aziz", "aziz"),
        ("Aziz", "AZIZ"),
        ("Aziz", "Azíz"),  # accents
        ("José", "Jose\u0301"),  # composed or not
        ("Aziz", "Ａｚｉｚ"),  # full-width (NFKC)
        ("Aziz", "𝙰𝚣𝚒𝚣"),  # mathematical monospace (NFKC)
        ("Aziz", "Az\u200diz"),  # a joiner between letters shows nothing
        ("Aziz", "\u0410ziz"),  # Cyrillic capital A
        ("Aziz", "Azi\u0437"[:3] + "z"),
        ("Oʻtkir", "O'tkir"),  # the okina and the apostrophe
        ("Oʻtkir", "Otkir"),
        ("Aziz Karimov", "Aziz  Karimov"),
    ],
)
def test_names_that_read_the_same_have_one_key(one: str, other: str) -> None:
    assert name_key(one) == name_key(other)


@pytest.mark.parametrize("one,other", [("Aziz", "Aziza"), ("Aziz", "Aziz K."), ("Азиз", "Aziz"), ("Ўткир", "Қодир"), ("Li", "Lì Wei")])
def test_different_names_keep_different_keys(one: str, other: str) -> None:
    assert name_key(one) != name_key(other)


@pytest.mark.parametrize(
    "typed",
    [
        "Teacher", "teacher", "TEACHER", "Teacher Aziz", "Mr. Teacher", "T.e.a.c.h.e.r", "Teacher_1",
        "O'qituvchi", "Oʻqituvchi", "Oqituvchi", "Ўқитувчи", "Ustoz", "Учитель", "УЧИТЕЛЬ",
        "Admin", "admin2", "Server", "Observer", "System", "Moderator", "Админ",
        "\u0422\u0415\u0410\u0421\u041dER",  # Cyrillic capitals that look like T E A C H
        "Ｔｅａｃｈｅｒ",
    ],
)
def test_role_words_are_refused(typed: str) -> None:
    sentence = reserved_refusal(display_name(typed))
    assert sentence is not None and "names a role in the practical" in sentence and sentence.endswith(".")


@pytest.mark.parametrize("typed", ["Aziz", "Teachers", "Serverov", "Adminova", "Ustozbek", "Oʻtkir", "Madina Teach"])
def test_ordinary_names_are_not_role_words(typed: str) -> None:
    assert reserved_refusal(typed) is None


def test_the_taken_sentence_suggests_a_fix() -> None:
    assert taken_refusal("Aziz") == (
        "Someone in this practical is already called \u201cAziz\u201d; add your surname or an initial "
        "(such as \u201cAziz K.\u201d) so your teacher can tell you apart."
    )
