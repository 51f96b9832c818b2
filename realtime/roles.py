"""Who may do what: the one table that maps every action to the roles allowed.

The room engine checks it for every socket message and the REST edge checks it
for every route, so a permission lives in exactly one place. Tests walk every
cell of PERMISSIONS.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    TEACHER = "teacher"
    STUDENT = "student"
    OBSERVER = "observer"
    DESIGNER = "designer"


class Action(StrEnum):
    # room socket
    JOIN = "join"
    PING = "ping"
    LEAVE = "leave"
    POSE = "pose"
    GRAB = "grab"
    MOVE_OBJECT = "move_object"
    RELEASE = "release"
    KICK = "kick"
    UNKICK = "unkick"  # let someone removed back in
    LOCK = "lock"
    SUMMON = "summon"
    FREEZE = "freeze"
    RESET = "reset"
    END = "end"
    # challenges
    INTERACT = "interact"
    ANSWER = "answer"
    CHOOSE_STATION = "choose_station"
    ASSIGN_STATION = "assign_station"
    # hints
    HINT = "hint"  # ask for the next hint of a step
    PUSH_HINT = "push_hint"  # send a hint to a student, a station or everyone
    # voice
    LISTEN = "listen"  # open a voice call that only receives the room's mix
    SPEAK = "speak"  # send voice into the mix, and mute yourself
    MUTE_OTHERS = "mute_others"
    BROADCAST = "broadcast"
    # REST
    OPEN_SESSION = "open_session"
    VIEW_SESSION = "view_session"
    LIST_SCENES = "list_scenes"
    UPLOAD_SCENE = "upload_scene"
    DELETE_SCENE = "delete_scene"
    VIEW_RESULTS = "view_results"
    PREVIEW_SCENE = "preview_scene"
    MANAGE_COURSES = "manage_courses"  # courses, rosters, sign-in codes, XP and badge settings
    VIEW_LEARNERS = "view_learners"  # a course's dashboard: every student's XP, badges, term and the full ladder
    VIEW_OWN_RECORDS = "view_own_records"  # a student's own XP, level, badges, card and place on the ladder
    # Signing in with a personal code (POST /api/signin) is public, as /api/join is: it has no
    # row; what it grants, a student's place in a room, is checked against JOIN. So are what a
    # badge verifier fetches (/api/badges/issuer, jwks.json, an achievement, a credential at its
    # id): public by design, as Open Badges hosts them.


_IN_ROOM = frozenset({Role.TEACHER, Role.STUDENT, Role.OBSERVER})
_ACTORS = frozenset({Role.TEACHER, Role.STUDENT})
_TEACHER = frozenset({Role.TEACHER})
_DESIGNER = frozenset({Role.DESIGNER})
_STUDENT = frozenset({Role.STUDENT})

#: Every action and the roles that may perform it. Observers watch and listen only
#: (a voice call that receives the mix but sends nothing);
#: designers manage scene packages and take no part in live rooms.
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.JOIN: _IN_ROOM,
    Action.PING: _IN_ROOM,
    Action.LEAVE: _IN_ROOM,
    Action.POSE: _ACTORS,
    Action.GRAB: _ACTORS,
    Action.MOVE_OBJECT: _ACTORS,
    Action.RELEASE: _ACTORS,
    Action.KICK: _TEACHER,
    Action.UNKICK: _TEACHER,
    Action.LOCK: _TEACHER,
    Action.SUMMON: _TEACHER,
    Action.FREEZE: _TEACHER,
    Action.RESET: _TEACHER,
    Action.END: _TEACHER,
    Action.INTERACT: _ACTORS,
    Action.ANSWER: _STUDENT,
    Action.CHOOSE_STATION: _STUDENT,
    Action.ASSIGN_STATION: _TEACHER,
    Action.HINT: _STUDENT,
    Action.PUSH_HINT: _TEACHER,
    Action.LISTEN: _IN_ROOM,
    Action.SPEAK: _ACTORS,
    Action.MUTE_OTHERS: _TEACHER,
    Action.BROADCAST: _TEACHER,
    Action.OPEN_SESSION: _TEACHER,
    Action.VIEW_SESSION: _TEACHER,
    Action.LIST_SCENES: frozenset({Role.TEACHER, Role.DESIGNER}),
    Action.UPLOAD_SCENE: _DESIGNER,
    Action.DELETE_SCENE: _DESIGNER,
    Action.VIEW_RESULTS: _TEACHER,
    Action.PREVIEW_SCENE: _DESIGNER,
    Action.MANAGE_COURSES: _TEACHER,
    Action.VIEW_LEARNERS: _TEACHER,
    Action.VIEW_OWN_RECORDS: _STUDENT,
}


def allowed(role: Role, action: Action) -> bool:
    """True if ``role`` may perform ``action``."""
    return role in PERMISSIONS[action]


def refusal(role: Role, action: Action) -> str:
    """The sentence shown when ``role`` may not perform ``action`` (socket and REST alike)."""
    return f"The {role} role may not {action.value.replace('_', ' ')}."
