"""xAPI 1.0.3 statements of what happens in a practical: the learning events as an LRS reads them.

Sans-I/O: pure functions from a stored room record (server.results lists the kinds) or a
badge award, and what the node knows about the practical, to statements. server.xapi_outbox
queues them in the transaction that stores the record and sends them to the LRS.

The conventions, each the same in every statement (docs/operations.md, "xAPI", has the
vocabulary as a table):

* actor: an Agent known by an ``account`` on this node: ``homePage`` the node's address
  (AMALIY_PUBLIC_URL), ``name`` the participant id (a roster student's course-wide
  ``st_…``, a guest's ``p_…``), with the display name;
* verb: one table, ``VERBS``: ADL's verbs (the ones cmi5 uses) where one says what
  happened, the TinCan registry's ``earned`` for badges, Amaliy's own
  (``https://amaliy.uz/xapi/verbs/…``) where neither has one;
* object: the lab, ``<home>/xapi/activities/scene/<scene id>``, one of its steps,
  ``<lab>/steps/<step id>`` (a checkpoint step is a ``cmi.interaction`` with its choices),
  or a badge's achievement, ``<home>/api/badges/achievements/<key>`` (server.credentials);
* result: ``score`` (raw; min, max and scaled where the most a student can get is known),
  ``success``, ``completion``, ``duration`` (ISO 8601, to 0.01 s, from the record's
  ``elapsed`` seconds);
* context: ``registration`` a UUID derived from the session id (one practical, one
  registration), the lab as ``parent`` of a step, the course as ``grouping``, the
  teacher as ``instructor``, platform ``Amaliy``, and the session, station and who did it
  as extensions;
* ``timestamp`` the record's wall-clock time; ``id`` a UUID (version 5) of the session,
  the record id and the actor, so a statement built twice is the same statement, and an
  LRS keeps it once however often it is sent.

Text a designer or teacher wrote (lab, step, badge and course names) is in a language
this server does not know, so its language map uses the tag ``und`` (undetermined).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple
from urllib.parse import quote

XAPI_VERSION = "1.0.3"
PLATFORM = "Amaliy"
#: Amaliy's own vocabulary (verbs and extensions no registry has): fixed, the same on every node
VOCABULARY = "https://amaliy.uz/xapi"
#: the namespace of every statement id and registration
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, VOCABULARY)
_ADL = "http://adlnet.gov/expapi/verbs/"
_ADL_ACTIVITY = "http://adlnet.gov/expapi/activities/"
_UNDETERMINED = "und"


class Verb(NamedTuple):
    id: str
    display: str


#: What each record kind (and a badge award) is as a verb. New kinds get a row here and in the docs' table.
VERBS: dict[str, Verb] = {
    # a student placed at a station for the first time in the practical: they joined it
    "station": Verb(_ADL + "initialized", "initialized"),
    "step_done": Verb(_ADL + "completed", "completed"),
    "mistake": Verb(VOCABULARY + "/verbs/made-mistake", "made a mistake in"),
    "checkpoint_answer": Verb(_ADL + "answered", "answered"),
    "challenge_done": Verb(_ADL + "completed", "completed"),
    # a hint shown (``hint``, server.results) to the students it was for; one a student asked for
    # (a ``hint`` whose reason is "requested") also makes a "requested" statement of the one who asked
    "hint": Verb(VOCABULARY + "/verbs/received-hint", "received a hint for"),
    "hint_requested": Verb(VOCABULARY + "/verbs/requested-hint", "requested a hint for"),
    # a participant left the practical (left, or their resume window ran out)
    "left": Verb(_ADL + "terminated", "terminated"),
    "badge": Verb("http://id.tincanapi.com/verb/earned", "earned"),
}

ACTIVITY_TYPES = {
    "lab": _ADL_ACTIVITY + "simulation",
    "step": _ADL_ACTIVITY + "interaction",
    "checkpoint": _ADL_ACTIVITY + "cmi.interaction",
    "course": _ADL_ACTIVITY + "course",
    "badge": "http://activitystrea.ms/schema/1.0/badge",
}


def extension(name: str) -> str:
    return f"{VOCABULARY}/extensions/{name}"


#: who a record is about: its ``participant`` (station), the one who acted (``by``), or everyone credited (``members``)
_ACTORS: dict[str, tuple[str, ...]] = {
    "station": ("participant",),
    "checkpoint_answer": ("by",),
    "hint": ("members",),
    "left": ("participant",),
    "step_done": ("members",),
    "mistake": ("members",),
    "challenge_done": ("members",),
}


@dataclass(frozen=True)
class Practical:
    """What a statement says about the practical a record comes from."""

    session_id: str
    scene_id: str
    #: the challenge as clients see it (realtime.challenges.engine public_challenge), if any
    challenge: Mapping[str, Any] | None = None
    course_id: str | None = None
    course_name: str | None = None
    teacher_id: str | None = None
    teacher_name: str | None = None


def statement_id(*parts: str) -> str:
    """A deterministic statement id: the same parts always give the same UUID."""
    return str(uuid.uuid5(NAMESPACE, "\n".join(parts)))


def registration(session_id: str) -> str:
    """The practical as an xAPI registration (one per session)."""
    return statement_id("registration", session_id)


def duration(seconds: float) -> str:
    """ISO 8601 duration to 0.01 s (xAPI's precision), e.g. 3725.5 -> ``PT1H2M5.5S``."""
    centis = max(0, round(seconds * 100))
    hours, rest = divmod(centis, 360_000)
    minutes, rest = divmod(rest, 6_000)
    out = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if rest or out == "PT":
        whole, frac = divmod(rest, 100)
        out += (f"{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else str(whole)) + "S"
    return out


def timestamp(at: float) -> str:
    """Unix time as the ISO 8601 UTC timestamp xAPI wants, to the millisecond."""
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def actors(kind: str, data: Mapping[str, Any]) -> list[str]:
    """The participant ids a record makes statements for, in order, each once."""
    found: list[Any] = []
    for field in _ACTORS.get(kind, ()):
        value = data.get(field)
        found += value if isinstance(value, list) else [value]
    return [pid for pid in dict.fromkeys(found) if isinstance(pid, str) and pid]


def _name(text: str) -> dict[str, str]:
    return {_UNDETERMINED: text}


def _score(raw: float, most: float | None) -> dict[str, Any]:
    """raw, with min/max/scaled when the most a student can get is known and raw is within it."""
    if most is None or most <= 0 or not 0 <= raw <= most:
        return {"raw": raw}
    return {"raw": raw, "min": 0, "max": most, "scaled": round(raw / most, 4)}


def _response(value: Any) -> str:
    """A checkpoint answer as xAPI's response string: a choice's index, a number as written."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return format(value, "g") if isinstance(value, float) else str(value)


class Statements:
    """Builds the statements of one node, whose address is ``home`` (the accounts' homePage)."""

    def __init__(self, home: str) -> None:
        self.home = home.rstrip("/")

    # ------------------------------------------------------------------ the parts

    def agent(self, participant: str, name: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"objectType": "Agent", "account": {"homePage": self.home, "name": participant}}
        if name:
            out["name"] = name
        return out

    def lab_id(self, practical: Practical) -> str:
        return f"{self.home}/xapi/activities/scene/{quote(practical.scene_id, safe='')}"

    def lab(self, practical: Practical) -> dict[str, Any]:
        challenge = practical.challenge or {}
        definition: dict[str, Any] = {"name": _name(challenge.get("title") or practical.scene_id), "type": ACTIVITY_TYPES["lab"]}
        if challenge.get("description"):
            definition["description"] = _name(challenge["description"])
        return {"objectType": "Activity", "id": self.lab_id(practical), "definition": definition}

    def step(self, practical: Practical, step_id: str) -> dict[str, Any]:
        """A step of the lab; a checkpoint step as a cmi.interaction with its question and choices."""
        known = next((s for s in (practical.challenge or {}).get("steps", ()) if s.get("id") == step_id), None)
        definition: dict[str, Any] = {"name": _name(known["text"] if known and known.get("text") else step_id), "type": ACTIVITY_TYPES["step"]}
        checkpoint = known.get("checkpoint") if known else None
        if checkpoint:
            definition["type"] = ACTIVITY_TYPES["checkpoint"]
            definition["description"] = _name(checkpoint["question"])
            if "choices" in checkpoint:
                definition["interactionType"] = "choice"
                definition["choices"] = [{"id": str(i), "description": _name(text)} for i, text in enumerate(checkpoint["choices"])]
            else:
                definition["interactionType"] = "numeric"
        return {"objectType": "Activity", "id": f"{self.lab_id(practical)}/steps/{quote(step_id, safe='')}", "definition": definition}

    def course(self, practical: Practical) -> dict[str, Any] | None:
        if practical.course_id is None:
            return None
        return {
            "objectType": "Activity",
            "id": f"{self.home}/xapi/activities/course/{quote(practical.course_id, safe='')}",
            "definition": {"name": _name(practical.course_name or practical.course_id), "type": ACTIVITY_TYPES["course"]},
        }

    def context(self, practical: Practical, parent: bool, extensions: Mapping[str, Any]) -> dict[str, Any]:
        activities: dict[str, list[dict[str, Any]]] = {}
        if parent:
            lab = self.lab(practical)
            activities["parent"] = [lab]
        course = self.course(practical)
        if course is not None:
            activities["grouping"] = [course]
        out: dict[str, Any] = {"registration": registration(practical.session_id), "platform": PLATFORM}
        if activities:
            out["contextActivities"] = activities
        if practical.teacher_id is not None:
            out["instructor"] = self.agent(practical.teacher_id, practical.teacher_name)
        out["extensions"] = {extension("session"): practical.session_id, **{extension(k): v for k, v in extensions.items() if v is not None}}
        return out

    # ------------------------------------------------------------------ statements

    def record(
        self, practical: Practical, record_id: str, kind: str, at: float, data: Mapping[str, Any], names: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """The statements of one room record: one per participant it is about (none for a kind
        that is no learning event, such as ``challenge_started``)."""
        verb = VERBS.get(kind)
        if verb is None or kind == "badge":
            return []
        step = data.get("step")
        whole = kind in ("station", "challenge_done", "left")
        if not whole and not isinstance(step, str):
            return []
        obj = self.lab(practical) if whole else self.step(practical, step)
        result = self._result(practical, kind, data)
        context = self.context(practical, parent=obj["id"] != self.lab_id(practical), extensions={"station": data.get("station"), "by": data.get("by")})
        # a student placed at another station later has joined already: one "initialized" per practical
        which = "joined" if kind == "station" else record_id
        out = []
        for pid in actors(kind, data):
            statement: dict[str, Any] = {
                "id": statement_id(practical.session_id, which, pid),
                "actor": self.agent(pid, names.get(pid)),
                "verb": {"id": verb.id, "display": {"en-US": verb.display}},
                "object": obj,
            }
            if result:
                statement["result"] = result
            statement["context"] = context
            statement["timestamp"] = timestamp(at)
            out.append(statement)
        asker = data.get("by")
        if kind == "hint" and data.get("reason") == "requested" and isinstance(asker, str):
            asked = VERBS["hint_requested"]
            out.append({
                "id": statement_id(practical.session_id, record_id + ":requested", asker),
                "actor": self.agent(asker, names.get(asker)),
                "verb": {"id": asked.id, "display": {"en-US": asked.display}},
                "object": obj, "context": context, "timestamp": timestamp(at),
            })
        return out

    def _result(self, practical: Practical, kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
        challenge = practical.challenge or {}
        elapsed = data.get("elapsed")
        timing = {"duration": duration(elapsed)} if isinstance(elapsed, (int, float)) else {}
        if kind == "step_done":
            known = next((s for s in challenge.get("steps", ()) if s.get("id") == data.get("step")), None)
            points = data.get("points", 0)
            return {"score": _score(points, known["points"] if known else None), "success": True, "completion": True, **timing}
        if kind == "challenge_done":
            most = None
            if challenge.get("steps"):
                most = sum(s.get("points", 0) for s in challenge["steps"]) + ((challenge.get("time_bonus") or {}).get("points") or 0)
            extensions = {extension("bonus"): data.get("bonus", 0)}
            return {"score": _score(data.get("score", 0), most), "success": True, "completion": True, **timing, "extensions": extensions}
        if kind == "mistake":
            extensions = {extension("mistake"): data.get("mistake"), extension("explanation"): data.get("explanation"), extension("penalty"): data.get("penalty")}
            return {"success": False, "extensions": {k: v for k, v in extensions.items() if v is not None}}
        if kind == "checkpoint_answer":
            return {"success": bool(data.get("correct")), "response": _response(data.get("value"))}
        if kind == "hint":
            extensions = {extension("hint-level"): data.get("level"), extension("hint-reason"): data.get("reason"), extension("hint-cost"): data.get("cost")}
            extensions = {k: v for k, v in extensions.items() if v is not None}
            return {"extensions": extensions} if extensions else {}
        return {}

    def badge(
        self, award_id: str, student: str, name: str | None, badge_key: str, badge_name: str, description: str,
        at: float, practical: Practical | None, course_id: str, course_name: str | None,
    ) -> dict[str, Any]:
        """A student earned a badge (once per student and badge, so the id is of those two)."""
        verb = VERBS["badge"]
        definition: dict[str, Any] = {"name": _name(badge_name), "type": ACTIVITY_TYPES["badge"]}
        if description:
            definition["description"] = _name(description)
        achievement = f"{self.home}/api/badges/achievements/{quote(badge_key)}"
        definition["moreInfo"] = achievement
        context: dict[str, Any]
        if practical is not None:
            context = self.context(practical, parent=False, extensions={})
        else:  # a level badge reached when the course's settings changed: no practical
            context = {"platform": PLATFORM}
            course = self.course(Practical("", "", course_id=course_id, course_name=course_name))
            if course is not None:
                context["contextActivities"] = {"grouping": [course]}
        context.setdefault("extensions", {})[extension("credential")] = f"{self.home}/api/badges/{quote(award_id)}"
        return {
            "id": statement_id("badge", course_id, student, badge_key),
            "actor": self.agent(student, name),
            "verb": {"id": verb.id, "display": {"en-US": verb.display}},
            "object": {"objectType": "Activity", "id": achievement, "definition": definition},
            "context": context,
            "timestamp": timestamp(at),
        }


def verb_of(statement: Mapping[str, Any]) -> str:
    """A statement's verb as a short word, for log lines."""
    return str((statement.get("verb") or {}).get("display", {}).get("en-US") or (statement.get("verb") or {}).get("id"))

