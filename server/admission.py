"""Who may take a place through ``POST /api/join``: device keys, removed people, honest and unique names.

A guest has no account, so the join edge gives each browser (or SDK client) a *device key*: a
random id signed with the node's secret, returned by the join and sent back on the next one
(the web client keeps it in localStorage). The key goes into the participant's token, so the
room knows which device each participant came from, and a teacher's ``kick`` keeps out both the
participant id and the device until a teacher sends ``unkick``. A key the server did not sign
(made up, damaged, or from another server) is replaced by a fresh one, never trusted.

Limits, honestly: a device key identifies a browser profile, not a person. A guest who clears
site storage, opens a private window or another browser comes back as a new device; the teacher
can lock the practical, or (with the courses work) run it for a roster whose students sign in
with their own codes.

Names: realtime.names' rules per name, plus two that need the practical: no role words
(``reserved_refusal``) and no name that reads the same as one in use (``name_key``). A name in
use is one a participant has in the room (connected or within the resume window) or one a join
handed out in the last ``HOLD_SECONDS`` whose token has not entered yet (``Room.entered``), so two students typing
"Aziz" at the same moment cannot both get it. The same device asking again for its own name
(a second tab, a reload after storage was lost) gets the same participant id back, and its new
socket replaces the old one. A token can still be used after its hold lapsed, or after a leave
or kick freed the name for someone else, so the room (``Room._on_enter``) checks the name again
when a token that carries a device enters.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import HTTPException

from realtime.names import name_key, reserved_refusal, taken_refusal
from realtime.roles import Role
from realtime.room import Room

#: How long a name handed out by a join stays taken before its token enters the room.
HOLD_SECONDS = 60.0
_PREFIX = "d1."


@dataclass
class _Hold:
    participant_id: str
    device: str
    role: Role
    until: float


class Admission:
    """The join edge's memory: names handed out but not yet in a room, per practical."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._holds: dict[str, dict[str, _Hold]] = {}

    def device(self, presented: str | None) -> str:
        """``presented`` if this server signed it, else a new device key."""
        if presented and presented.startswith(_PREFIX):
            ident, _, mac = presented[len(_PREFIX) :].partition(".")
            if ident and hmac.compare_digest(mac, self._sign(ident)):
                return presented
        ident = secrets.token_urlsafe(16)
        return f"{_PREFIX}{ident}.{self._sign(ident)}"

    def admit(self, room: Room, name: str, role: Role, device: str, now: float) -> str:
        """The participant id to put in the token, or an HTTPException saying why not (403, 409, 422)."""
        removed = room.refusal(None, device)
        if removed is not None:
            raise HTTPException(403, removed)
        reserved = reserved_refusal(name)
        if reserved is not None:  # shaped as the other refused names: a 422 whose msg is the sentence
            raise HTTPException(422, [{"type": "display_name", "loc": ["body", "name"], "msg": reserved, "input": name}])
        for session in [s for s, held in self._holds.items() if all(h.until <= now for h in held.values())]:
            del self._holds[session]  # nothing left held there (and ended practicals go too)
        holds = self._holds.setdefault(room.id, {})
        entered = set(room.entered).union(room.participants)
        for key in [k for k, hold in holds.items() if hold.until <= now or hold.participant_id in entered]:
            del holds[key]  # expired, or entered (the room has the name now, or had it until a leave or kick)
        key = name_key(name)
        present = room.named(name)
        if present is not None:
            if present.device == device and present.role == role:
                return present.id
            raise HTTPException(409, taken_refusal(present.name))
        hold = holds.get(key)
        if hold is not None:
            if hold.device == device and hold.role == role:
                hold.until = now + HOLD_SECONDS
                return hold.participant_id
            raise HTTPException(409, taken_refusal(name))
        participant = "p_" + secrets.token_hex(6)
        holds[key] = _Hold(participant, device, role, now + HOLD_SECONDS)
        return participant

    def _sign(self, ident: str) -> str:
        return hmac.new(self._secret, b"amaliy-device:" + ident.encode(), hashlib.sha256).hexdigest()[:24]
