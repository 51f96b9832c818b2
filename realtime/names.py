"""Display names: normalise what a person typed, and refuse what would not show honestly.

A display name comes from whoever calls ``POST /api/join`` (or the operator running
``amaliy users add``) and is shown to everyone else: in the roster, on the teacher's
dashboard, over an avatar, in logs. So it is distrusted, and ``display_name`` checks
it in this order:

1. Unicode NFC, so the same name typed on two keyboards is the same string, and the
   length below counts composed characters.
2. Surrounding whitespace is trimmed (what ``str.strip`` removes: spaces of any
   width, tabs and line breaks).
3. Every character left is checked. Refused are
   * controls (Cc: NUL, BEL, ESC, tab, newline, ...): they corrupt terminals and logs;
   * line and paragraph separators (Zl, Zp): a name is one line;
   * format characters (Cf): bidi overrides and marks (U+202E makes a name read
     backwards), zero-width spaces, the soft hyphen, emoji tag characters; except
     ZWNJ (U+200C) and ZWJ (U+200D) standing between two visible characters, which
     Persian, Arabic and Indic scripts need to break or join letters and which emoji
     sequences such as the family emoji use to combine;
   * surrogates (Cs): a lone half of a UTF-16 pair (``"\\ud800"`` in JSON) is not a
     character, and UTF-8 (so a token, a database, a log) cannot encode it;
   * private-use (Co) and unassigned (Cn) code points, the latter as of the Unicode
     version of the server's Python (``unicodedata.unidata_version``): no one else's
     font shows them the same.
4. Each run of inner whitespace becomes one space.
5. Something must render: a name of only spaces, combining marks, joiners and blank
   fillers (such as U+3164 HANGUL FILLER) is refused as invisible.
6. At most ``max_length`` code points are left.

Names already inside issued tokens are not checked again: a token minted before
these rules stays valid.

Two more rules need the practical, not just the name, and the join edge applies them
with ``name_key`` (the form two names are compared in) and ``reserved_refusal``:

* a display name is unique in a practical: two names that read the same are the same
  name, whatever their case, accents, compatibility forms or look-alike letters (the room
  checks a guest's name once more when its token enters: the token may be used late);
* a word that names a role or the system ("Teacher", "Oʻqituvchi", "Учитель",
  "Admin", "Server", "Observer", ...) is not a name anyone may join with: a student
  called "Teacher" would be believed.
"""

from __future__ import annotations

import unicodedata

#: Longest display name, in code points after normalisation.
MAX_LENGTH = 40

#: Joiners allowed between two visible characters (see the module docstring, step 3).
_JOINERS = frozenset("\u200c\u200d")
#: Letters and symbols that render as nothing at all.
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u303f\U0001d159")
#: Why each refused general category is refused, as the end of a sentence.
_REFUSED = {
    "Cc": "a control character",
    "Zl": "a line break",
    "Zp": "a line break",
    "Cf": "an invisible formatting character",
    "Cs": "half of a UTF-16 surrogate pair, which is not a character",
    "Co": "a private-use character",
    "Cn": f"a code point unassigned in Unicode {unicodedata.unidata_version}",
}


class NameRefused(ValueError):
    """A display name broke the rules; the message is one sentence to show the person."""


def display_name(raw: str, max_length: int = MAX_LENGTH) -> str:
    """The name to store and show for ``raw``; raises NameRefused with a sentence saying why not."""
    name = unicodedata.normalize("NFC", raw).strip()
    for i, char in enumerate(name):
        category = unicodedata.category(char)
        if category not in _REFUSED:
            continue
        if char in _JOINERS and _joins(name, i):
            continue
        raise NameRefused(f"A name may not contain {_describe(char)}: that is {_REFUSED[category]}.")
    name = " ".join(name.split())
    if not any(_renders(char) for char in name):
        raise NameRefused("A name needs at least one visible character.")
    if len(name) > max_length:
        raise NameRefused(f"A name may be at most {max_length} characters long; this one has {len(name)}.")
    return name


def _joins(name: str, i: int) -> bool:
    """True if the joiner at ``i`` stands between two characters that are neither space nor joiner."""
    if i == 0 or i == len(name) - 1:
        return False
    return all(not c.isspace() and c not in _JOINERS for c in (name[i - 1], name[i + 1]))


def _renders(char: str) -> bool:
    """True for a character that leaves a visible mark: a letter, number, punctuation or symbol."""
    return unicodedata.category(char)[0] in "LNPS" and char not in _BLANKS


def _describe(char: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``: the code point, and its name where it has one."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} ({name})" if name else f"U+{ord(char):04X}"


#: Letters of other scripts that look exactly like a Latin letter, folded to it in ``name_key``
#: (Cyrillic and Greek; only letters that are the same glyph in common fonts). Capitals first,
#: before case folding: Cyrillic "Т" looks like "T" though "т" does not look like "t".
_LOOKALIKE_CAPITALS = str.maketrans(
    {
        **dict(zip("АВЕЅІЈКМНОРСТХУ", "ABESIJKMHOPCTXY")),  # Cyrillic
        **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX")),  # Greek
    }
)
_LOOKALIKES = str.maketrans(
    {
        # Cyrillic; к м н т в too, whose capitals look Latin, so a name's key does not hang on its case
        **dict(zip("аеорсухіјѕԁһӏԛԝкмнтв", "aeopcyxijsdhlqwkmhtb")),
        **dict(zip("αεικνορτυχ", "aeikvoptux")),  # Greek
    }
)
#: Apostrophes and the Uzbek okina / tutuq belgisi, all written for the same sign:
#: dropped in ``name_key`` so "O'qituvchi", "Oʻqituvchi" and "Oqituvchi" compare equal.
_APOSTROPHES = dict.fromkeys(map(ord, "'`´ʻʼʹʽ‘’‛′"), None)

#: Words that name a role in the practical or the system, in the languages of the classroom.
#: Compared by ``name_key``, word by word, and as the whole name with its separators removed.
RESERVED = frozenset(
    {
        "teacher", "tutor", "instructor", "admin", "administrator", "moderator", "server", "system", "observer", "amaliy",
        "oqituvchi", "ustoz", "muallim", "kuzatuvchi", "tizim",  # Uzbek (Latin)
        "ўқитувчи", "устоз", "муаллим", "кузатувчи", "тизим",  # Uzbek (Cyrillic)
        "учитель", "преподаватель", "админ", "администратор", "модератор", "сервер", "система", "наблюдатель",  # Russian
    }
)


def name_key(name: str) -> str:
    """The form two display names are compared in: equal keys mean the names read the same.

    NFKC (full-width, mathematical and other compatibility letters become plain ones), case
    folded, accents and other combining marks dropped, joiners and other format characters
    dropped, apostrophes and the okina dropped, Cyrillic and Greek look-alikes folded to Latin,
    whitespace collapsed.
    """
    folded = unicodedata.normalize("NFKC", name).translate(_LOOKALIKE_CAPITALS).casefold()
    bare = "".join(c for c in unicodedata.normalize("NFKD", folded) if unicodedata.category(c) not in ("Mn", "Me", "Cf"))
    bare = bare.translate(_APOSTROPHES)
    # marks are gone, so й compares as и and ў as у (accent-insensitive), while қ and ҳ stay themselves
    bare = unicodedata.normalize("NFC", bare).translate(_LOOKALIKES)
    return " ".join(bare.split())


def _words(key: str) -> list[str]:
    """The words of a key: runs of letters, and runs of digits ("admin2" is "admin", "2")."""
    words, word, kind = [], "", ""
    for char in key:
        category = unicodedata.category(char)[0]
        if category in "LN" and (category == kind or not word):
            word += char
        else:
            if word:
                words.append(word)
            word = char if category in "LN" else ""
        kind = category
    return [*words, word] if word else words


def reserved_refusal(name: str) -> str | None:
    """The sentence refusing ``name`` if it claims a role ("Teacher", "Admin 2", "T.e.a.c.h.e.r"), else None."""
    words = _words(name_key(name))
    for word in [*words, "".join(words)]:
        if word in _RESERVED_KEYS:
            return f"\u201c{name}\u201d names a role in the practical, so it cannot be your name; use your own name."
    return None


def taken_refusal(name: str) -> str:
    """The sentence refusing a name someone in the practical already uses (by ``name_key``)."""
    return (
        f"Someone in this practical is already called \u201c{name}\u201d; add your surname or an initial "
        f"(such as \u201c{name} K.\u201d) so your teacher can tell you apart."
    )


_RESERVED_KEYS = frozenset(name_key(word) for word in RESERVED)
