"""JSON from people we do not trust, with its nesting depth bounded.

Python's json module recurses once per level: a document nested a few thousand
deep raises RecursionError while parsing, and one nested a few hundred deep
parses but later breaks whatever recurses over it again (pickling it across a
process, pydantic, json.dumps). Both are refused here with a sentence, so a
caller handles one ValueError for every bad document. The size limit is the
caller's: depth is checked after parsing, by a walk whose cost is bounded by
the size of what was parsed. Integers are bounded in digits too: no format of
ours needs more than a few, and Python's own refusal of huge ones speaks of
interpreter settings, not of the document.
"""

from __future__ import annotations

import json
from typing import Any

#: Nesting accepted by default: every format we read is far shallower.
MAX_DEPTH = 32
#: Digits of the longest integer accepted (a 64-bit integer has at most 20).
MAX_INT_DIGITS = 40


class TooDeep(ValueError):
    """The document nests arrays and objects deeper than allowed."""


def loads(raw: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw``; ValueError (TooDeep for nesting) for anything that is not JSON within ``max_depth``."""
    try:
        value = json.loads(raw, parse_int=_integer)
    except RecursionError:
        raise TooDeep(f"nested deeper than {max_depth} levels of arrays and objects") from None
    if depth(value, max_depth) > max_depth:
        raise TooDeep(f"nested deeper than {max_depth} levels of arrays and objects")
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits, more than {MAX_INT_DIGITS}")
    return int(text)


def depth(value: Any, stop_after: int) -> int:
    """Levels of arrays/objects in ``value`` (a scalar is 0), without recursion; stops counting past ``stop_after``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > stop_after:
                return deepest
        stack.extend((child, level) for child in children if isinstance(child, (dict, list)))
    return deepest
