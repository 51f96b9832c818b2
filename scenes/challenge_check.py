"""Checks on a schema_version 2 manifest that need the whole of it: every name a condition,
rule or checkpoint uses must exist, values must fit their properties, ``requires``
must not loop, a mistake must differ from its step, a rule that sets shared
equipment may not read one station's (each station would set it its own way), and
a hint may highlight and demonstrate only things that exist (a demonstration moves
an object someone could move, onto a snap point its target has).

The pydantic models (scenes.challenge_format) check each entry's shape; this
module checks what entries say about each other, and reports every problem
with its JSON path and a fix, like the rest of ingest. A condition that already
holds when the lab opens needs the evaluator, so the server checks that after
ingest (realtime.challenges.spawn_check).
"""

from __future__ import annotations

from typing import Any

from scenes import challenge_format as cf
from scenes import manifest as mf
from scenes.report import Problem


class _Names:
    """Which objects, zones, properties and snap points a condition may name."""

    def __init__(self, manifest: mf.Manifest) -> None:
        template = manifest.stations.template if manifest.stations else None
        local_objects = template.objects if template else []
        self.objects: dict[str, mf.SceneObject] = {obj.id: obj for obj in [*manifest.objects, *local_objects]}
        self.zones = {zone.id for zone in [*manifest.zones, *(template.zones if template else [])]}
        #: (object, property) that a rule sets
        self.ruled = {(rule.object, rule.property) for rule in manifest.rules}


def _p(path: str, what: str, fix: str) -> Problem:
    return Problem(f"scene.json {path}", what, fix)


def _value_fits(prop: cf.Property, value: Any) -> str | None:
    """Why ``value`` cannot be a value of ``prop``, or None."""
    if prop.kind == "switch":
        return None if type(value) is bool else f"{prop.id!r} is a switch: use true or false"
    if prop.kind == "number":
        if type(value) not in (int, float):
            return f"{prop.id!r} is a number property: use a number"
        assert prop.min is not None and prop.max is not None
        return None if prop.min <= value <= prop.max else f"{value!r} is outside {prop.id!r}'s range {prop.min:g}..{prop.max:g}"
    assert prop.choices is not None
    return None if value in prop.choices else f"{value!r} is not one of {prop.id!r}'s choices ({', '.join(prop.choices)})"


def _between_steps(prop: cf.Property, value: float) -> str | None:
    """Why students can never set ``prop`` to ``value`` (it lies between two of its steps), or None."""
    if prop.kind != "number" or prop.step is None or not prop.interactive:
        return None
    assert prop.min is not None and prop.max is not None
    nearest = min(prop.max, prop.min + round((value - prop.min) / prop.step) * prop.step)
    if abs(nearest - value) <= 1e-9 * max(1.0, abs(value)):
        return None
    return f"{value:g} lies between {prop.id!r}'s steps ({prop.min:g}, {prop.min + prop.step:g}, ... in steps of {prop.step:g}): a student setting it gets {nearest:g}"


def _property(names: _Names, ref_object: str, ref_property: str, path: str, problems: list[Problem]) -> cf.Property | None:
    obj = names.objects.get(ref_object)
    if obj is None:
        problems.append(_p(f"{path}.object", f"there is no object {ref_object!r}", "use the id of an object or of a station template object"))
        return None
    prop = next((prop for prop in obj.properties if prop.id == ref_property), None)
    if prop is None:
        declared = ", ".join(repr(prop.id) for prop in obj.properties) or "none"
        problems.append(_p(f"{path}.property", f"object {ref_object!r} has no property {ref_property!r} (it has {declared})", "declare it in the object's 'properties' or fix the name"))
    return prop


def _condition(condition: Any, names: _Names, path: str, problems: list[Problem]) -> None:
    kind = cf.kind_of(condition)
    body = cf.body_of(condition)
    here = f"{path}.{kind}"

    def known_object(field: str) -> mf.SceneObject | None:
        ident = getattr(body, field)
        obj = names.objects.get(ident)
        if obj is None:
            problems.append(_p(f"{here}.{field}", f"there is no object {ident!r}", "use the id of an object or of a station template object"))
        return obj

    if kind in ("in_zone", "participant_in_zone") and body.zone not in names.zones:
        problems.append(_p(f"{here}.zone", f"there is no zone {body.zone!r}", "declare the zone in 'zones' (or the station template's) or fix the name"))
    if kind in ("in_zone", "near", "upright", "tilted"):
        known_object("object")
    if kind == "near":
        known_object("other")
    if kind == "held":
        obj = known_object("object")
        if obj is not None and not obj.interactable:
            problems.append(_p(f"{here}.object", f"{obj.id!r} is not interactable, so nobody can ever hold it", "set \"interactable\": true on it or change the condition"))
    if kind == "at_snap":
        known_object("object")
        target = known_object("target")
        if target is not None and body.snap not in {sp.id for sp in target.snap_points}:
            declared = ", ".join(repr(sp.id) for sp in target.snap_points) or "none"
            problems.append(_p(f"{here}.snap", f"object {target.id!r} has no snap point {body.snap!r} (it has {declared})", "declare it in the target's 'snap_points' or fix the name"))
    if kind == "property":
        prop = _property(names, body.object, body.property, here, problems)
        if prop is not None:
            if body.equals is not None:
                why = _value_fits(prop, body.equals)
                if why is None and (body.object, body.property) not in names.ruled:
                    why = _between_steps(prop, body.equals)  # type: ignore[arg-type]
                if why:
                    problems.append(_p(f"{here}.equals", why, "compare with a value the property can take"))
            elif prop.kind != "number":
                problems.append(_p(here, f"{prop.id!r} is a {prop.kind}: only number properties have a range", "use 'equals'"))
            else:
                assert prop.min is not None and prop.max is not None
                if (body.min is not None and body.min > prop.max) or (body.max is not None and body.max < prop.min):
                    problems.append(_p(here, f"the range never meets {prop.id!r}'s own range {prop.min:g}..{prop.max:g}, so it can never hold", "compare with values the property can take"))
    children = cf.children(condition)
    if kind in ("all", "any"):
        for i, child in enumerate(children):
            _condition(child, names, f"{here}[{i}]", problems)
    elif kind == "not":
        _condition(children[0], names, here, problems)
    elif kind == "stable_for":
        _condition(children[0], names, f"{here}.condition", problems)
    elif kind == "then":
        for i, child in enumerate(children):
            _condition(child, names, f"{here}.conditions[{i}]", problems)


def _used_twice(ids: list[str], path: str, what: str, where: str) -> list[Problem]:
    """An id repeated among its siblings at ``path`` (a list), each repeat at its own index."""
    problems = []
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            problems.append(_p(f"{path}[{i}].id", f"{what} id {ident!r} is used twice {where}", "give every one a unique id"))
        seen.add(ident)
    return problems


def _template_ids(ids: list[str], key: str, what: str, shared: set[str]) -> list[Problem]:
    """Template ids must be unique, differ from the shared ones, and leave room for '@<station>'."""
    problems = _used_twice(ids, f"$.stations.template.{key}", what, "in the template")
    for i, ident in enumerate(ids):
        path = f"$.stations.template.{key}[{i}].id"
        if ident in shared:
            problems.append(_p(path, f"{ident!r} is also a shared {what}'s id", "rename one: conditions must know which one they mean"))
        if len(ident) > 56:
            problems.append(_p(path, "a template id may have at most 56 characters (each station adds '@<number>')", "shorten the id"))
    return problems


def _template_problems(manifest: mf.Manifest) -> list[Problem]:
    if manifest.stations is None:
        return []
    template = manifest.stations.template
    problems = _template_ids([obj.id for obj in template.objects], "objects", "object", {obj.id for obj in manifest.objects})
    problems += _template_ids([zone.id for zone in template.zones], "zones", "zone", {zone.id for zone in manifest.zones})
    assets = {asset.id for asset in manifest.assets}
    for i, obj in enumerate(template.objects):
        if obj.asset not in assets:
            problems.append(_p(f"$.stations.template.objects[{i}].asset", f"asset {obj.asset!r} is not declared in 'assets'", "declare it in 'assets' or fix the id"))
    return problems


def _property_problems(manifest: mf.Manifest) -> list[Problem]:
    problems = []
    template = manifest.stations.template.objects if manifest.stations else []
    for prefix, objects in (("$.objects", manifest.objects), ("$.stations.template.objects", template)):
        for i, obj in enumerate(objects):
            problems += _used_twice([prop.id for prop in obj.properties], f"{prefix}[{i}].properties", "property", f"on {obj.id!r}")
    return problems


def _named(condition: Any) -> list[str]:
    """The objects and zones a condition names, in order, each once."""
    body = cf.body_of(condition)
    here = [getattr(body, field) for field in ("object", "other", "target", "zone") if isinstance(getattr(body, field, None), str)]
    return list(dict.fromkeys(here + [name for child in cf.children(condition) for name in _named(child)]))


def _rule_problems(manifest: mf.Manifest, names: _Names) -> list[Problem]:
    problems: list[Problem] = []
    targets: dict[tuple[str, str], int] = {}
    template = manifest.stations.template if manifest.stations else None
    local = {thing.id for thing in [*template.objects, *template.zones]} if template else set()
    for i, rule in enumerate(manifest.rules):
        path = f"$.rules[{i}]"
        station_things = [name for name in _named(rule.when) if name in local]
        if rule.object not in local and station_things:
            problems.append(_p(
                f"{path}.object",
                f"{rule.object!r} is shared, but the rule's condition names station equipment ({', '.join(station_things)}): every station would set it its own way",
                "put the object in the station template, or have the condition name only shared objects and zones",
            ))
        prop = _property(names, rule.object, rule.property, path, problems)
        if prop is not None:
            for field in ("value", "otherwise"):
                value = getattr(rule, field)
                why = value is not None and _value_fits(prop, value)
                if why:
                    problems.append(_p(f"{path}.{field}", why, "use a value the property can take"))
        key = (rule.object, rule.property)
        if key in targets:
            problems.append(_p(f"{path}.property", f"rules[{targets[key]}] already sets {rule.object}.{rule.property}", "combine the two rules' conditions into one rule with 'any'"))
        targets.setdefault(key, i)
        _condition(rule.when, names, f"{path}.when", problems)
    return problems


def requires_of(challenge: cf.Challenge) -> dict[str, list[str]]:
    """Each step's prerequisites, with the challenge's ``order`` applied (the one reading of it)."""
    out: dict[str, list[str]] = {}
    for i, step in enumerate(challenge.steps):
        if step.requires is not None:
            out[step.id] = list(step.requires)
        elif challenge.order == "sequence" and i > 0:
            out[step.id] = [challenge.steps[i - 1].id]
        else:
            out[step.id] = []
    return out


def _cycle(requires: dict[str, list[str]]) -> list[str] | None:
    """One cycle in the requires graph, as the ids around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(step: str) -> list[str] | None:
        state[step] = 1
        stack.append(step)
        for before in requires.get(step, []):
            if state.get(before) == 1:
                return stack[stack.index(before) :] + [before]
            if before in requires and before not in state:
                found = visit(before)
                if found:
                    return found
        stack.pop()
        state[step] = 2
        return None

    for step in requires:
        if step not in state:
            found = visit(step)
            if found:
                return found
    return None


def _hint_problems(hints: cf.StepHints, names: _Names, path: str) -> list[Problem]:
    """Every object or zone a step's hints name must exist; a demo moves an interactable object onto a real place."""
    problems: list[Problem] = []
    if hints.specific is not None:
        for k, name in enumerate(hints.specific.highlight):
            if name not in names.objects and name not in names.zones:
                problems.append(_p(f"{path}.specific.highlight[{k}]", f"there is no object or zone {name!r}", "use the id of an object or zone (or of a station template one)"))
    demo = hints.bottom_out.demo if hints.bottom_out is not None else None
    if demo is None:
        return problems
    here = f"{path}.bottom_out.demo"
    moved = names.objects.get(demo.object)
    if moved is None:
        problems.append(_p(f"{here}.object", f"there is no object {demo.object!r}", "use the id of an object or of a station template object"))
    elif not moved.interactable:
        problems.append(_p(f"{here}.object", f"{moved.id!r} is not interactable, so no student could do what the demonstration shows", "demonstrate an object students can grab, or set \"interactable\": true on it"))
    target = names.objects.get(demo.target)
    if target is None and demo.target not in names.zones:
        problems.append(_p(f"{here}.target", f"there is no object or zone {demo.target!r}", "use the id of an object or zone (or of a station template one)"))
    elif demo.snap is not None and target is None:
        problems.append(_p(f"{here}.snap", f"{demo.target!r} is a zone, and a zone has no snap points", "leave 'snap' out: the demonstration goes to the zone's centre"))
    elif demo.snap is not None and target is not None and demo.snap not in {sp.id for sp in target.snap_points}:
        declared = ", ".join(repr(sp.id) for sp in target.snap_points) or "none"
        problems.append(_p(f"{here}.snap", f"object {target.id!r} has no snap point {demo.snap!r} (it has {declared})", "declare it in the target's 'snap_points' or fix the name"))
    return problems


def _challenge_problems(challenge: cf.Challenge, names: _Names) -> list[Problem]:
    problems: list[Problem] = []
    ids = [step.id for step in challenge.steps]
    for i, step in enumerate(challenge.steps):
        path = f"$.challenge.steps[{i}]"
        if step.id in ids[:i]:  # each step's problems together, in order
            problems.append(_p(f"{path}.id", f"step id {step.id!r} is used twice in the challenge", "give every one a unique id"))
        for j, before in enumerate(step.requires or []):
            if before == step.id:
                problems.append(_p(f"{path}.requires[{j}]", f"step {step.id!r} requires itself", "remove it from its own 'requires'"))
            elif before not in ids:
                problems.append(_p(f"{path}.requires[{j}]", f"there is no step {before!r}", f"use one of: {', '.join(ids)}"))
        if step.condition is not None:
            _condition(step.condition, names, f"{path}.condition", problems)
        if step.checkpoint is not None and step.checkpoint.number is not None and step.checkpoint.number.answer_from is not None:
            ref = step.checkpoint.number.answer_from
            prop = _property(names, ref.object, ref.property, f"{path}.checkpoint.number.answer_from", problems)
            if prop is not None and prop.kind != "number":
                problems.append(_p(f"{path}.checkpoint.number.answer_from", f"{prop.id!r} is a {prop.kind}, not a number", "point 'answer_from' at a number property"))
        problems += _used_twice([mistake.id for mistake in step.mistakes], f"{path}.mistakes", "mistake", f"in step {step.id!r}")
        for j, mistake in enumerate(step.mistakes):
            mpath = f"{path}.mistakes[{j}]"
            _condition(mistake.condition, names, f"{mpath}.condition", problems)
            if step.condition is not None and mistake.condition.model_dump(by_alias=True) == step.condition.model_dump(by_alias=True):
                problems.append(_p(f"{mpath}.condition", f"the mistake is the same condition as step {step.id!r} itself: doing the step would count as an error", "describe the wrong action, not the right one"))
        if step.hints is not None:
            problems += _hint_problems(step.hints, names, f"{path}.hints")
    cycle = _cycle({step: [before for before in requires if before != step] for step, requires in requires_of(challenge).items()})  # a step requiring itself is reported above
    if cycle:
        first = ids.index(cycle[0])
        problems.append(_p(f"$.challenge.steps[{first}].requires", f"the steps require each other in a loop: {' -> '.join(cycle)}", "remove one of these 'requires' so the steps can be done in some order"))
    used = {step.skill for step in challenge.steps if step.skill is not None}
    for skill in challenge.skills:
        if skill not in used:
            problems.append(_p(f"$.challenge.skills.{skill}", f"no step exercises skill {skill!r}", f"give it as a step's 'skill' or remove it (the steps' skills: {', '.join(sorted(used)) or 'none'})"))
    return problems


def problems(manifest: mf.Manifest) -> list[Problem]:
    """Every cross-reference problem of a schema_version 2 manifest (none for version 1)."""
    if manifest.schema_version == 1:
        return []
    names = _Names(manifest)
    found = _template_problems(manifest) + _property_problems(manifest) + _rule_problems(manifest, names)
    if manifest.challenge is not None:
        found += _challenge_problems(manifest.challenge, names)
    return found
