"""What a practical asks of its students, as data: properties, rules, stations and the challenge.

These are the schema_version 2 parts of scene.json (scenes.manifest holds the
rest). A course designer declares them; nothing here is code the server runs.
The live room (realtime.challenges) evaluates the conditions from its own
authoritative state, so a student's progress can only come from what they
physically did in the shared lab.

Every condition is a JSON object with exactly one key, the condition's kind:

    {"at_snap": {"object": "beaker", "target": "tripod", "snap": "top"}}
    {"all": [{"property": {"object": "burner", "property": "lit", "equals": true}},
             {"stable_for": {"seconds": 3, "condition": {...}}}]}

Object, zone, property and snap point names refer to the station template's
entries (evaluated on each station's own copies) or to the scene's shared ones.
Checks that need the whole manifest (unknown names, cyclic ``requires``) live in
scenes.challenge_check; a condition already true at spawn needs the evaluator
and is checked by the server after ingest.

Hints and skills are data too: a step's hint ladder (``StepHints``: nudge, specific
with a highlight, bottom-out with a demonstration), the challenge's ``HintSettings``
(costs, cooldown, the stuck-signal thresholds) and the BKT parameters of its skills
(``SkillModel``), which the live room's learning engine (realtime.learning) reads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from scenes.badge_format import MAX_BADGES, Badge

#: A template id gets "@<station number>" appended in each station; keep ids short enough
#: that the result still fits the room protocol's 64-character names.
TEMPLATE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,55}$"
MAX_STATIONS = 64
MAX_STEPS = 50
MAX_MISTAKES_PER_STEP = 8
MAX_RULES = 64
MAX_PROPERTIES_PER_OBJECT = 8
#: Nodes in one condition tree (every kind counts one); bounds the evaluator's work per change.
MAX_CONDITION_NODES = 32
MAX_SECONDS = 3600.0

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="lower-case letters, digits, '-' and '_'")]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="id of an object, zone, property or snap point")]
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, description="seconds")]
Metres = Annotated[float, Field(gt=0, le=100.0, description="metres")]
Degrees = Annotated[float, Field(ge=0, le=180.0, description="degrees")]
Number = Annotated[float, Field(ge=-1e9, le=1e9)]
Value = Union[bool, Number, Annotated[str, Field(max_length=64)]]
Text = Annotated[str, Field(min_length=1, max_length=300)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# ------------------------------------------------------------------ properties


class Property(_Model):
    """A discrete or numeric state of an object: a burner's flame, a switch, a dial, a reading.

    ``switch`` holds true/false, ``number`` a value in [min, max] (moved in ``step``s
    when set by a student), ``choice`` one of ``choices``. ``interactive`` properties are
    set by students with the ``interact`` message; the others only by ``rules``.
    """

    id: Id
    title: Annotated[str, Field(max_length=120)] = ""
    kind: Literal["switch", "number", "choice"]
    initial: Value
    interactive: bool = True
    min: Number | None = None
    max: Number | None = None
    step: Annotated[float, Field(gt=0, le=1e9)] | None = None
    unit: Annotated[str, Field(max_length=16)] = ""
    choices: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=2, max_length=16)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Property":
        if self.kind == "switch":
            if type(self.initial) is not bool or self.min is not None or self.max is not None or self.choices:
                raise ValueError("a switch has a true/false 'initial' and no 'min', 'max' or 'choices'")
        elif self.kind == "number":
            if self.min is None or self.max is None or not self.min < self.max:
                raise ValueError("a number property needs 'min' < 'max'")
            if type(self.initial) not in (int, float) or not self.min <= self.initial <= self.max:
                raise ValueError("a number property's 'initial' must be a number between 'min' and 'max'")
            if self.choices:
                raise ValueError("a number property has no 'choices'")
        else:
            if not self.choices or len(set(self.choices)) != len(self.choices):
                raise ValueError("a choice property needs distinct 'choices'")
            if self.initial not in self.choices or type(self.initial) is not str:
                raise ValueError("a choice property's 'initial' must be one of its 'choices'")
            if self.min is not None or self.max is not None:
                raise ValueError("a choice property has no 'min' or 'max'")
        return self


# ------------------------------------------------------------------ conditions


class InZone(_Model):
    object: Name
    zone: Name


class AtSnap(_Model):
    """``object``'s origin within ``distance_m`` of ``target``'s snap point ``snap``, its up
    axis within ``angle_degrees`` of the snap point's (with ``match_yaw`` the whole rotation),
    and, while ``placed`` (the default), put down: nobody holds it."""

    object: Name
    target: Name
    snap: Name
    distance_m: Metres = 0.05
    angle_degrees: Degrees = 20.0
    match_yaw: bool = False
    placed: bool = True


class Near(_Model):
    object: Name
    other: Name
    distance_m: Metres


class Upright(_Model):
    """The object's up axis within ``within_degrees`` of the world's up."""

    object: Name
    within_degrees: Degrees = 15.0


class Tilted(_Model):
    """The object's up axis more than ``past_degrees`` from the world's up (pouring)."""

    object: Name
    past_degrees: Degrees


class Held(_Model):
    """Someone holds the object; with ``by_learner``, a member of the station's group."""

    object: Name
    by_learner: bool = False


class ParticipantInZone(_Model):
    """A member of the station's group stands (head over the floor) in the zone."""

    zone: Name


class PropertyIs(_Model):
    """A property ``equals`` a value, or lies within [``min``, ``max``] (either bound may be left out)."""

    object: Name
    property: Name
    equals: Value | None = None
    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _one_test(self) -> "PropertyIs":
        ranged = self.min is not None or self.max is not None
        if (self.equals is None) == (not ranged):
            raise ValueError("give either 'equals' or a range ('min' and/or 'max'), not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' must not exceed 'max'")
        return self


class StableFor(_Model):
    """``condition`` has held without a break for ``seconds``."""

    seconds: Seconds
    condition: "Condition"


class Then(_Model):
    """Each condition becomes true in turn, the last within ``within_seconds`` of the first."""

    conditions: Annotated[list["Condition"], Field(min_length=2, max_length=8)]
    within_seconds: Seconds


class _Wrapper(_Model):
    pass


class InZoneC(_Wrapper):
    in_zone: InZone


class AtSnapC(_Wrapper):
    at_snap: AtSnap


class NearC(_Wrapper):
    near: Near


class UprightC(_Wrapper):
    upright: Upright


class TiltedC(_Wrapper):
    tilted: Tilted


class HeldC(_Wrapper):
    held: Held


class ParticipantInZoneC(_Wrapper):
    participant_in_zone: ParticipantInZone


class PropertyC(_Wrapper):
    property: PropertyIs


class AllC(_Wrapper):
    all: Annotated[list["Condition"], Field(min_length=1, max_length=16)]


class AnyC(_Wrapper):
    any: Annotated[list["Condition"], Field(min_length=1, max_length=16)]


class NotC(_Wrapper):
    not_: "Condition" = Field(alias="not")
    model_config = ConfigDict(extra="forbid", populate_by_name=False)


class StableForC(_Wrapper):
    stable_for: StableFor


class ThenC(_Wrapper):
    then: Then


#: condition kind (the one key) -> its wrapper model
KINDS: dict[str, type[_Wrapper]] = {
    "in_zone": InZoneC,
    "at_snap": AtSnapC,
    "near": NearC,
    "upright": UprightC,
    "tilted": TiltedC,
    "held": HeldC,
    "participant_in_zone": ParticipantInZoneC,
    "property": PropertyC,
    "all": AllC,
    "any": AnyC,
    "not": NotC,
    "stable_for": StableForC,
    "then": ThenC,
}


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = [key for key in value if key in KINDS]
        return keys[0] if len(keys) == 1 and len(value) == 1 else None
    if isinstance(value, _Wrapper):
        return kind_of(value)
    return None


Condition = Annotated[
    Union[tuple(Annotated[model, Tag(kind)] for kind, model in KINDS.items())],  # type: ignore[valid-type]
    Discriminator(
        _kind,
        custom_error_type="condition",
        custom_error_message=f"a condition is an object with exactly one key, one of: {', '.join(KINDS)}",
    ),
]


def kind_of(condition: _Wrapper) -> str:
    """The kind (its one key) of a parsed condition."""
    return next(kind for kind, model in KINDS.items() if type(condition) is model)


def body_of(condition: _Wrapper) -> Any:
    """What the condition's one key holds (a leaf's fields, a list, or one condition)."""
    return getattr(condition, "not_" if isinstance(condition, NotC) else kind_of(condition))


def children(condition: _Wrapper) -> list[_Wrapper]:
    """The conditions directly inside a combinator or a timer; none for a leaf."""
    body = body_of(condition)
    if isinstance(condition, (AllC, AnyC)):
        return list(body)
    if isinstance(condition, NotC):
        return [body]
    if isinstance(condition, StableForC):
        return [body.condition]
    if isinstance(condition, ThenC):
        return list(body.conditions)
    return []


def count_nodes(condition: _Wrapper) -> int:
    return 1 + sum(count_nodes(child) for child in children(condition))


def _bounded(condition: _Wrapper) -> _Wrapper:
    if count_nodes(condition) > MAX_CONDITION_NODES:
        raise ValueError(f"a condition may have at most {MAX_CONDITION_NODES} parts; split the step")
    return condition


for _model in (StableFor, Then, AllC, AnyC, NotC, StableForC, ThenC):
    _model.model_rebuild()

BoundedCondition = Annotated[Condition, Field(description="see docs/scene-package.md, Conditions")]


# ------------------------------------------------------------------ rules


class Rule(_Model):
    """A derived property: ``object.property`` becomes ``value`` once ``when`` has held for
    ``after_seconds``, and goes back to ``otherwise`` (if given) when it stops holding."""

    object: Name
    property: Name
    value: Value
    when: BoundedCondition
    after_seconds: Annotated[float, Field(ge=0, le=MAX_SECONDS)] = 0.0
    otherwise: Value | None = None

    @model_validator(mode="after")
    def _size(self) -> "Rule":
        _bounded(self.when)
        return self


# ------------------------------------------------------------------ challenge


class ChoiceQuestion(_Model):
    choices: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=2, max_length=8)]
    #: index of the right choice, from 0
    answer: Annotated[int, Field(ge=0, le=7)]

    @model_validator(mode="after")
    def _in_range(self) -> "ChoiceQuestion":
        if self.answer >= len(self.choices):
            raise ValueError(f"'answer' is a choice's index from 0 and there are {len(self.choices)} choices")
        return self


class PropertyRef(_Model):
    object: Name
    property: Name


class NumberQuestion(_Model):
    """A typed number, right within ``tolerance`` of ``answer`` (or of a number property's
    value at the moment of answering, ``answer_from``)."""

    answer: Number | None = None
    answer_from: PropertyRef | None = None
    tolerance: Annotated[float, Field(ge=0, le=1e9)] = 0.0
    unit: Annotated[str, Field(max_length=16)] = ""

    @model_validator(mode="after")
    def _one_answer(self) -> "NumberQuestion":
        if (self.answer is None) == (self.answer_from is None):
            raise ValueError("give either 'answer' or 'answer_from'")
        return self


class Checkpoint(_Model):
    """A question shown in the HUD; a wrong answer counts as a mistake."""

    question: Text
    choice: ChoiceQuestion | None = None
    number: NumberQuestion | None = None
    #: shown after a wrong answer
    wrong: Text = "Not quite: look again and try once more."

    @model_validator(mode="after")
    def _one_kind(self) -> "Checkpoint":
        if (self.choice is None) == (self.number is None):
            raise ValueError("a checkpoint has either 'choice' or 'number'")
        return self


class Mistake(_Model):
    """A state that counts as an error while its step is open, each time it starts to hold."""

    id: Id
    condition: BoundedCondition
    explanation: Text
    #: points taken off; the challenge's ``mistake_penalty`` when left out
    penalty: Annotated[int, Field(ge=0, le=1000)] | None = None

    @model_validator(mode="after")
    def _size(self) -> "Mistake":
        _bounded(self.condition)
        return self


# ------------------------------------------------------------------ hints and skills

Cost = Annotated[int, Field(ge=0, le=1000, description="points")]
Count = Annotated[int, Field(ge=1, le=100)]
Probability = Annotated[float, Field(ge=0, le=1)]
MAX_HIGHLIGHT = 16
MAX_SKILLS = MAX_STEPS


class Demo(_Model):
    """A ghost of ``object`` moving onto ``target``'s snap point ``snap``; without ``snap``,
    onto ``target``'s position; if ``target`` is a zone, onto its centre."""

    object: Name
    target: Name
    snap: Name | None = None


class SpecificHint(_Model):
    """The second rung: what to do, with the objects and zones to look at highlighted in 3D."""

    text: Text
    highlight: Annotated[list[Name], Field(max_length=MAX_HIGHLIGHT, description="ids of objects or zones")] = []


class BottomOutHint(_Model):
    """The last rung: the answer, shown by a demonstration."""

    text: Text
    demo: Demo | None = None


class StepHints(_Model):
    """A step's hint ladder; each rung is optional and the ladder skips those left out."""

    nudge: Text | None = None
    specific: SpecificHint | None = None
    bottom_out: BottomOutHint | None = None


class HintSettings(_Model):
    """What hints cost and when the room offers them by itself (realtime.learning.stuck)."""

    nudge_cost: Cost = 0
    specific_cost: Cost = 2
    bottom_out_cost: Cost = 5
    #: seconds after any hint at a station before the next one (automatic or asked for)
    cooldown_seconds: Seconds = 30.0
    #: no change at the station for this long: stuck ("idle")
    idle_seconds: Seconds = 60.0
    #: on a step this many times its ``expected_seconds``: stuck ("slow")
    slow_factor: Annotated[float, Field(ge=1, le=10)] = 1.5
    #: the same mistake this many times on a step: stuck ("mistakes")
    repeat_mistakes: Count = 2
    #: this many tries at the step's skill without mastery: "wheel_spinning"
    wheel_spinning_after: Count = 10
    #: students who have mastered the step's skill get fewer automatic hints
    fading: bool = True


class SkillModel(_Model):
    """A skill's Bayesian Knowledge Tracing probabilities; the defaults are
    realtime.learning.bkt.SkillParams' (scenes does not import realtime: a test keeps them equal)."""

    prior: Probability = 0.1
    learn: Probability = 0.1
    guess: Probability = 0.2
    slip: Probability = 0.1
    forget: Probability = 0.0

    @model_validator(mode="after")
    def _identifiable(self) -> "SkillModel":
        if not self.guess < 1.0 - self.slip:
            raise ValueError("'guess' must be below 1 - 'slip': otherwise knowing the skill would not make a correct step more likely")
        return self


class Step(_Model):
    id: Id
    text: Text
    condition: BoundedCondition | None = None
    checkpoint: Checkpoint | None = None
    points: Annotated[int, Field(ge=0, le=1000)] = 10
    #: knowledge component this step exercises (the learner model tracks mastery per skill)
    skill: Id | None = None
    #: steps that must be done before this one opens; by default (order "sequence") the step before
    requires: Annotated[list[Id], Field(max_length=MAX_STEPS)] | None = None
    #: done later than this after opening, the step earns half its points
    time_limit_seconds: Seconds | None = None
    mistakes: Annotated[list[Mistake], Field(max_length=MAX_MISTAKES_PER_STEP)] = []
    #: highlight the objects the step's condition names while it is the current step
    highlight: bool | None = None
    #: how long the designer expects the step to take (the "slow" stuck signal compares with it)
    expected_seconds: Seconds | None = None
    #: the step's hint ladder
    hints: StepHints | None = None

    @model_validator(mode="after")
    def _one_check(self) -> "Step":
        if (self.condition is None) == (self.checkpoint is None):
            raise ValueError("a step has either a 'condition' or a 'checkpoint'")
        if self.condition is not None:
            _bounded(self.condition)
        return self


class TimeBonus(_Model):
    """Finishing in ``target_seconds`` or less earns up to ``points``, less the later it is."""

    target_seconds: Seconds
    points: Annotated[int, Field(ge=0, le=1000)]


class Challenge(_Model):
    id: Id
    title: Annotated[str, Field(min_length=1, max_length=120)]
    description: Annotated[str, Field(max_length=2000)] = ""
    #: "sequence": each step requires the one before unless it lists its own ``requires``;
    #: "free": only the listed ``requires`` order the steps
    order: Literal["sequence", "free"] = "sequence"
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
    mistake_penalty: Annotated[int, Field(ge=0, le=1000)] = 2
    time_bonus: TimeBonus | None = None
    #: default for steps' ``highlight``
    highlight: bool = True
    #: badges a student earns by how the practical went (scenes.badge_format; no ``level`` here)
    badges: Annotated[list[Badge], Field(max_length=MAX_BADGES)] = []
    #: hint costs, cooldown and stuck thresholds
    hints: HintSettings = HintSettings()
    #: BKT parameters per skill id (a skill left out gets the defaults)
    skills: Annotated[dict[Id, SkillModel], Field(max_length=MAX_SKILLS)] = {}
    #: P(known) at or above which a skill counts as mastered
    mastery: Annotated[float, Field(gt=0, le=1)] = 0.95

    @model_validator(mode="after")
    def _practical_badges(self) -> "Challenge":
        seen: set[str] = set()
        for badge in self.badges:
            if badge.criteria.level is not None:
                raise ValueError(f"badge {badge.id!r}: a 'level' badge belongs to a course, not to a scene")
            if badge.id in seen:
                raise ValueError(f"badge id {badge.id!r} is used twice")
            seen.add(badge.id)
        return self


# ------------------------------------------------------------------ stations


class Grid(_Model):
    """``count`` stations in rows of ``columns``, the first at ``origin``, spaced along x then z."""

    count: Annotated[int, Field(ge=1, le=MAX_STATIONS)]
    columns: Annotated[int, Field(ge=1, le=MAX_STATIONS)]
    origin: Annotated[list[Annotated[float, Field(ge=-1000, le=1000)]], Field(min_length=3, max_length=3)]
    spacing: Annotated[list[Annotated[float, Field(ge=-1000, le=1000)]], Field(min_length=2, max_length=2, description="metres along x, then z")]
    yaw_degrees: Literal[0, 90, 180, 270, -90, -180, -270] = 0


class Placement(_Model):
    position: Annotated[list[Annotated[float, Field(ge=-1000, le=1000)]], Field(min_length=3, max_length=3)]
    #: stations turn in quarter turns only, so their box zones stay axis-aligned
    yaw_degrees: Literal[0, 90, 180, 270, -90, -180, -270] = 0
    title: Annotated[str, Field(max_length=60)] = ""
