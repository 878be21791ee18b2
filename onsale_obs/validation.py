"""The one translator from pydantic's validation errors to input errors in the user's words.

Every file kind (SLO spec, receivers, schedule, scenario, profile) is validated by a pydantic
model; :func:`problems` turns *all* of a ``ValidationError``'s errors into ``BadInputError``s
that name the file, the path inside it (``slos.0.objectives.normal``, as written in the file:
pydantic's union and discriminator tags are dropped), what was expected and what was found,
plus the line and column when the file was read with :func:`onsale_obs.yamlfile.read_yaml_located`.

"Input should be a valid dictionary or instance of ObjectivesModel" becomes
"expected a mapping with the keys normal, onsale, got the number 3".
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from onsale_obs.exceptions import BadInputError

E = TypeVar("E", bound=BadInputError)

#: pydantic error types that mean "the value is of the wrong type", with what was expected
_TYPES: dict[str, str] = {
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "none_required": "nothing (null)",
    "datetime_type": "a time with a zone (2026-12-01T10:00:00Z)",
    "datetime_parsing": "a time with a zone (2026-12-01T10:00:00Z)",
    "datetime_from_date_parsing": "a time with a zone (2026-12-01T10:00:00Z)",
    "date_type": "a date (2026-12-01)",
}


_KEYS = frozenset({"missing", "extra_forbidden"})


@dataclass(slots=True)
class _Err:
    path: list[str | int]  # inside the file
    kind: str
    err: dict[str, Any]
    loc: tuple[Any, ...]  # pydantic's, tags included
    union: tuple[tuple[str | int, ...], str] | None  # (where the union is, the branch tried)


def kind_of(value: Any) -> str:
    """What a value from a file is, in words: "the number 3", "a list", "true"."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the text {shown!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def problems(
    exc: Any,
    data: Any,
    *,
    file: str,
    model: Any = None,
    located: Any = None,
    error: type[E] = BadInputError,  # type: ignore[assignment]
    prefix: Sequence[str | int] = (),
) -> list[E]:
    """Every error of a pydantic ``ValidationError`` as an ``error`` naming file and field.

    ``model`` (the validated class) lets "not a known key" list the keys that are;
    ``located`` (a :class:`onsale_obs.yamlfile.Located`) adds line and column;
    ``data`` is what was validated; ``prefix`` is where it sits inside the file.
    """
    errs = [_place(dict(e), data) for e in exc.errors()]
    out: list[E] = []
    seen: set[tuple[str, str]] = set()
    for e, message in _collapse(errs, model):
        path = [*prefix, *e.path]
        field = ".".join(str(p) for p in path) or None
        if (field or "", message) in seen:
            continue
        seen.add((field or "", message))
        where = located.position(path, key=e.kind == "extra_forbidden") if located else None
        line, column = where if where else (None, None)
        out.append(error(message, file=file, field=field, line=line, column=column))
    return out


def _place(err: dict[str, Any], data: Any) -> _Err:
    """The path inside the file: pydantic's loc without its union and discriminator tags."""
    loc = tuple(err["loc"])
    path: list[str | int] = []
    union: tuple[tuple[str | int, ...], str] | None = None
    node = data
    known = data is not None
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if (known and isinstance(node, dict) and part in node) or (
            known and isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
            path.append(part)
        elif known and last and isinstance(node, dict) and err["type"] in _KEYS:
            path.append(part)  # a missing key, or one that is not known
        elif isinstance(part, str) and (_is_tag(part) or (known and _is_discriminator(node, part))):
            if union is None and not (known and _is_discriminator(node, part)):
                union = (tuple(path), part)
        elif not known:
            if not (isinstance(part, str) and "[" in part):
                path.append(part)
        else:
            path.append(part)
            known = False
    return _Err(path, err["type"], err, loc, union)


def _is_discriminator(node: Any, part: str) -> bool:
    return isinstance(node, dict) and any(v == part for v in node.values() if isinstance(v, str))


def _is_tag(part: str) -> bool:
    """pydantic's names for union branches: ``ThresholdModel``, ``str``, ``function-before[...]``."""
    return (
        "[" in part
        or part in ("str", "int", "float", "bool", "none", "list", "dict", "datetime")
        or part[:1].isupper()
    )


def _collapse(errs: list[_Err], model: Any) -> list[tuple[_Err, str]]:
    """One message per place: a union's branches that failed on the value's type alone become
    one "expected a mapping or text" when no branch got further; otherwise only the branch
    that got furthest speaks."""
    out: list[tuple[_Err, str]] = []
    groups: dict[tuple[str | int, ...], list[_Err]] = {}
    for e in errs:
        if e.union is not None:
            groups.setdefault(e.union[0], []).append(e)
    done: set[tuple[str | int, ...]] = set()
    for e in errs:
        if e.union is None:
            out.append((e, _message(e, model)))
            continue
        point = e.union[0]
        if point in done:
            continue
        done.add(point)
        group = groups[point]
        branch0 = group[0].union[1] if group[0].union else ""
        deep = [g for g in group if len(g.path) > len(point) or g.kind not in _TYPES]
        if deep:
            branch = deep[0].union[1] if deep[0].union else ""
            for g in group:
                if g.union and g.union[1] == branch:
                    out.append((g, _message(g, model)))
        else:
            wanted = list(dict.fromkeys(_expected(g, model) for g in group))
            if "a number" in wanted and "a whole number" in wanted:
                wanted.remove("a whole number")
            got = kind_of(group[0].err.get("input"))
            described = _description_at(model, group[0].loc[: group[0].loc.index(branch0)])
            what = f"{_or(wanted)}: {described}" if described else _or(wanted)
            out.append((group[0], f"expected {what}, got {got}."))
    return out


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _expected(e: _Err, model: Any) -> str:
    if e.kind in ("model_type", "model_attributes_type", "dict_type"):
        keys = _keys_at(model, e.loc)
        if keys:
            return f"a mapping with the keys {', '.join(keys)}"
    if e.kind == "literal_error":
        return "one of " + str(e.err.get("ctx", {}).get("expected", "")).replace("'", "")
    return _TYPES.get(e.kind, str(e.err["msg"]).removeprefix("Input should be ").rstrip("."))


def _message(e: _Err, model: Any) -> str:
    """pydantic's message in the words of a file: what was expected and what was found."""
    err = e.err
    kind = e.kind
    ctx = err.get("ctx") or {}
    got = kind_of(err.get("input"))
    if kind == "missing":
        keys = _keys_at(model, e.loc)
        what = f"a mapping with the keys {', '.join(keys)}" if keys else None
        what = _description_at(model, e.loc) or what
        return f"is required: {what}." if what else "is required."
    if kind == "extra_forbidden":
        keys = _keys_at(model, e.loc[:-1])
        known = f"; expected one of {', '.join(keys)}" if keys else ""
        return f"is not a known key{known}."
    if kind == "union_tag_invalid":
        key = str(ctx.get("discriminator", "type")).strip("'")
        e.path.append(key)
        listed = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"{ctx.get('tag')!r} is not a known {key}; expected one of {listed}."
    if kind == "union_tag_not_found":
        key = str(ctx.get("discriminator", "type")).strip("'")
        e.path.append(key)
        tags = _tags_at(model, e.loc, key)
        return f"is required: one of {', '.join(tags)}." if tags else "is required."
    if kind in _TYPES:
        return f"expected {_expected(e, model)}, got {got}."
    if kind == "literal_error":
        return f"expected {_expected(e, model)}, got {got}."
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        bound = next(iter(ctx.values()), "?")
        return (
            f"expected a number {words} {bound:g}, got {got}."
            if isinstance(bound, int | float)
            else f"expected a value {words} {bound}, got {got}."
        )
    if kind == "finite_number":
        return f"expected a finite number, got {got}."
    if kind in ("too_short", "too_long"):
        size = ctx.get("min_length" if kind == "too_short" else "max_length")
        words = "at least" if kind == "too_short" else "at most"
        return f"expected {words} {size} item{'s' if size != 1 else ''}, got {ctx.get('actual_length')}."
    if kind == "string_too_short":
        size = ctx.get("min_length", 1)
        return "must not be empty." if size == 1 else f"expected at least {size} characters."
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters, got {len(str(err.get('input')))}."
    if kind == "string_pattern_mismatch":
        described = _description_at(model, e.loc)
        what = described or f"text matching the pattern {ctx.get('pattern')}"
        return f"expected {what}, got {got}."
    if kind == "timezone_aware":
        return f"must include a time zone, for example 2026-12-01T10:00:00Z; got {got}."
    message = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = message.replace("Input should be", "expected")
    return message.rstrip(".") + "."


# ---------------------------------------------------------------- reading the model's fields


def _resolve(ann: Any, part: Any) -> Any:
    """The annotation found at ``part`` below ``ann`` (a model, union, list or dict)."""
    from pydantic import BaseModel

    ann = _strip(ann)
    if isinstance(part, str) and "[" in part:
        return ann
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        for name, info in ann.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        members = [_strip(a) for a in args]
        for m in members:
            if getattr(m, "__name__", None) == part:
                return m
        for m in members:
            if isinstance(m, type) and issubclass(m, BaseModel) and _has_tag(m, part):
                return m
        for m in members:
            found = _resolve(m, part)
            if found is not None:
                return found
        return None
    if origin in (list, tuple, set, frozenset, Sequence):
        return args[0] if args and isinstance(part, int) else None
    if origin is dict:
        return args[1] if len(args) == 2 else None
    return None


def _strip(ann: Any) -> Any:
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    return ann


def _has_tag(model: Any, tag: Any) -> bool:
    for info in model.model_fields.values():
        if typing.get_origin(info.annotation) is typing.Literal and tag in typing.get_args(
            info.annotation
        ):
            return True
    return False


def _at(model: Any, loc: Sequence[Any]) -> Any:
    ann = model
    for part in loc:
        if ann is None:
            return None
        ann = _resolve(ann, part)
    return ann


def _keys_at(model: Any, loc: Sequence[Any]) -> list[str]:
    """The keys the model accepts at ``loc`` (empty when unknown)."""
    from pydantic import BaseModel

    if model is None:
        return []
    ann = _strip(_at(model, loc))
    candidates = (
        typing.get_args(ann)
        if typing.get_origin(ann)
        in (
            typing.Union,
            types.UnionType,
        )
        else (ann,)
    )
    models = [
        _strip(c)
        for c in candidates
        if isinstance(_strip(c), type) and issubclass(_strip(c), BaseModel)
    ]
    if len(models) != 1:
        return []
    return [info.alias or name for name, info in models[0].model_fields.items()]


def _tags_at(model: Any, loc: Sequence[Any], key: str) -> list[str]:
    """The values the discriminator ``key`` may take in the union at ``loc``."""
    ann = _strip(_at(model, loc)) if model is not None else None
    out: list[str] = []
    for member in typing.get_args(ann):
        info = getattr(_strip(member), "model_fields", {}).get(key)
        if info is not None and typing.get_origin(info.annotation) is typing.Literal:
            out.extend(str(a) for a in typing.get_args(info.annotation))
    return out


def _description_at(model: Any, loc: Sequence[Any]) -> str | None:
    from pydantic import BaseModel

    if model is None or not loc:
        return None
    parent = _strip(_at(model, loc[:-1]))
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        info = parent.model_fields.get(str(loc[-1]))
        if info is not None:
            return info.description
    return None
