"""PROV-CONSTRAINTS that matter for run documents, checked on a ``ProvDocument``.

``violations(document)`` lists, as sentences naming the records, every breach of:

* every identifier a relation names is declared (in the same bundle, or at the top level of a collection);
* no identifier is both an entity and an activity (constraint 55), and hadMember's collection is a prov:Collection;
* an activity starts before it ends (constraint 29), its start/end events carry those times;
* a generation or usage falls within its activity (constraints 32-35);
* an entity is generated once (constraints 23-24: generations of an entity by one activity unify, so their
  times must agree, an absent time agreeing with any; by two activities, they are two generations);
* derivation is acyclic, and the source is generated before the derived entity (constraints 41, 44);
* the general entity of a specialization is generated before the specific one (constraint 45);
* an informant activity starts before the informed one ends (constraint 37).

The checks need nothing but ``prov``; tests run them on every document prov4ml writes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Set

__all__ = ["violations"]


def violations(document) -> List[str]:
    """Every breach found in ``document`` and each of its bundles (empty when it passes)."""
    top_ids = _declared(document)
    for b in document.bundles:
        top_ids[b.identifier].add("entity")  # a bundle is an entity
    out = _check(document, "document", top_ids, set())
    for bundle in document.bundles:
        out += _check(bundle, f"bundle {bundle.identifier}", _declared(bundle), top_ids)
    return out


def _declared(bundle) -> Dict[Any, Set[str]]:
    kinds: Dict[Any, Set[str]] = defaultdict(set)
    for rec in bundle.get_records():
        if rec.is_element():
            kinds[rec.identifier].add(type(rec).__name__.replace("Prov", "").lower())
    return kinds


def _args(rec) -> Dict[str, Any]:
    return {str(k.localpart): v for k, v in rec.formal_attributes}


def _check(bundle, where: str, ids: Dict[Any, Set[str]], outer: Dict[Any, Set[str]]) -> List[str]:
    from prov.constants import PROV

    out: List[str] = []
    for ident, kinds in ids.items():
        if {"entity", "activity"} <= kinds:
            out.append(f"{where}: {ident} is both an entity and an activity (constraint 55)")
    times: Dict[Any, tuple] = {}
    types: Dict[Any, Set[str]] = defaultdict(set)
    for rec in bundle.get_records():
        if rec.is_element():
            types[rec.identifier] |= {str(getattr(t, "uri", t)) for t in rec.get_asserted_types()}
            if type(rec).__name__ == "ProvActivity":
                start, end = rec.get_startTime(), rec.get_endTime()
                times[rec.identifier] = (start, end)
                if _before(end, start):
                    out.append(f"{where}: activity {rec.identifier} ends ({end}) before it starts ({start}) (constraint 29)")

    generations: Dict[Any, List[tuple]] = defaultdict(list)
    derivations: Dict[Any, Set[Any]] = defaultdict(set)
    specializations: List[tuple] = []
    for rec in bundle.get_records():
        if not rec.is_relation():
            continue
        kind = rec.get_type().localpart
        args = _args(rec)
        for name, value in args.items():
            if value is not None and hasattr(value, "uri") and name not in ("time", "startTime", "endTime"):
                if value not in ids and value not in outer:
                    out.append(f"{where}: {kind} names {value}, which is not declared (prov:{name})")
        time = args.get("time")
        if kind == "Generation":
            generations[args["entity"]].append((args.get("activity"), time))
            out += _within(where, "generation of", args["entity"], args.get("activity"), time, times)
        elif kind == "Usage":
            out += _within(where, "usage of", args["entity"], args.get("activity"), time, times)
        elif kind in ("Start", "End"):
            act = args["activity"]
            start, end = times.get(act, (None, None))
            expected = start if kind == "Start" else end
            if time is not None and expected is not None and time != expected:
                out.append(f"{where}: the {kind.lower()} event of {act} at {time} differs from its {kind.lower()} time {expected}")
            other = args.get("starter" if kind == "Start" else "ender")
            if other is not None and time is not None:
                o_start, o_end = times.get(other, (None, None))
                if _before(time, o_start) or _before(o_end, time):
                    out.append(f"{where}: {act} is {kind.lower()}ed at {time}, outside its {'starter' if kind == 'Start' else 'ender'} {other}")
        elif kind == "Derivation":
            derivations[args["generatedEntity"]].add(args["usedEntity"])
        elif kind == "Specialization":
            specializations.append((args["specificEntity"], args["generalEntity"]))
        elif kind == "Communication":
            informed, informant = args["informed"], args["informant"]
            if _before(times.get(informed, (None, None))[1], times.get(informant, (None, None))[0]):
                out.append(f"{where}: {informed} ends before its informant {informant} starts (constraint 37)")
        elif kind == "Membership":
            if PROV["Collection"].uri not in types.get(args["collection"], set()) and args["collection"] in ids:
                out.append(f"{where}: hadMember({args['collection']}, ...) on an entity not typed prov:Collection")

    for entity, gens in generations.items():
        out += _one_generation(where, entity, gens)
    first_gen = {e: min((t for _a, t in g if t is not None), default=None) for e, g in generations.items()}
    for derived, sources in derivations.items():
        for source in sources:
            if _before(first_gen.get(derived), first_gen.get(source)):
                out.append(f"{where}: {derived} is generated before {source}, which it derives from (constraint 44)")
    cycle = _cycle(derivations)
    if cycle:
        out.append(f"{where}: derivation cycle {' <- '.join(map(str, cycle))}")
    for specific, general in specializations:
        if general in generations and (specific not in generations or _before(first_gen.get(specific), first_gen.get(general))):
            out.append(f"{where}: specializationOf({specific}, {general}): the general entity is generated after the specific one (constraint 45)")
    return out


def _one_generation(where: str, entity, gens: List[tuple]) -> List[str]:
    """Generations of ``entity`` as (activity, time): the same statement twice (two documents merged) is one."""
    by_activity: Dict[Any, Set[Any]] = defaultdict(set)
    for activity, time in gens:
        by_activity[activity].add(time)
    times = [{t for t in ts if t is not None} for ts in by_activity.values()]
    if len(by_activity) > 1 or len(times[0]) > 1:
        return [f"{where}: {entity} is generated {len(gens)} times (constraint 24, unique generation)"]
    return []


def _within(where: str, what: str, entity, activity, time: Optional[datetime], times) -> List[str]:
    start, end = times.get(activity, (None, None))
    if time is not None and (_before(time, start) or _before(end, time)):
        return [f"{where}: {what} {entity} at {time} is outside {activity} [{start}, {end}] (constraints 32-35)"]
    return []


def _before(a: Optional[datetime], b: Optional[datetime]) -> bool:
    return a is not None and b is not None and a < b


def _cycle(edges: Dict[Any, Iterable[Any]]) -> Optional[List[Any]]:
    state: Dict[Any, int] = {}
    path: List[Any] = []

    def visit(node) -> Optional[List[Any]]:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in list(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
