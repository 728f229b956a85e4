"""Frozen dataclasses <-> JSON values, validated in one place: every problem is named by its path.

Supported field types: bool, int, float, str, Literal[...], tuple[X, ...], dict[str, X], X | None, nested
dataclasses, and unions of dataclasses told apart by a `kind: Literal[...]` field. A dataclass may define
`problems(self) -> Iterator[str]` for checks across fields; its messages are prefixed with the dataclass's path.
`parse` reads JSON text from outside within stated limits, so no input can reach a RecursionError.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")
JSON = Any  # what json.loads returns
MAX_DEPTH = 32  # the deepest JSON read from outside: a task definition is 5 levels deep, a message header 2
MAX_INTEGER_DIGITS = 4300  # Python's own limit on int() of a string; stated here to refuse it in plain words


class ValidationError(ValueError):
    """A JSON value does not describe a valid object; `problems` lists each one as 'path: message'."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"invalid {what}: " + "; ".join(problems))


def to_json(value: Any) -> JSON:
    """A dataclass (or container of them) as plain JSON values: dicts, lists, str, numbers, bool, None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def parse(text: str | bytes) -> JSON:
    """JSON text (bytes: UTF-8) from outside as a value, or ValueError whose message completes a sentence about
    it ("the header " + message): not UTF-8, not JSON (NaN and Infinity included), an integer longer than
    MAX_INTEGER_DIGITS, or nesting deeper than MAX_DEPTH."""
    try:
        value = json.loads(
            text.decode() if isinstance(text, bytes) else text, parse_constant=_no_constant, parse_int=_integer
        )
    except UnicodeDecodeError as e:
        raise ValueError(f"is not valid UTF-8 text (byte {e.start})") from None
    except RecursionError:  # json.loads recurses per level: thousands of "[" exhaust the stack first
        raise ValueError(f"is nested too deeply: at most {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise ValueError(f"is not valid JSON: {e}") from None
    if _deeper_than(value, MAX_DEPTH):
        raise ValueError(f"is nested too deeply: at most {MAX_DEPTH} levels")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer has {len(text.lstrip('-'))} digits, more than {MAX_INTEGER_DIGITS}")
    return int(text)


def _deeper_than(value: JSON, limit: int) -> bool:
    """Whether objects and lists nest more than `limit` levels in `value` (without recursion)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def from_json(cls: type[T], data: JSON, what: str = "") -> T:
    """Build `cls` from `data`, or raise ValidationError naming every problem found."""
    problems: list[str] = []
    result = _decode(cls, data, what or cls.__name__, problems)
    if problems:
        raise ValidationError(what or cls.__name__, problems)
    return typing.cast(T, result)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types: resolving them is slow, and every message decode needs them."""
    return get_type_hints(cls)


def _kind_of(cls: type) -> tuple[str, ...]:
    hint = _hints(cls).get("kind")
    return tuple(get_args(hint)) if get_origin(hint) is Literal else ()


def _decode(tp: Any, data: JSON, path: str, problems: list[str]) -> Any:
    origin = get_origin(tp)
    if _is_union(tp):
        options = [a for a in get_args(tp) if a is not type(None)]
        if data is None:
            if type(None) in get_args(tp):
                return None
            problems.append(f"{path}: required")
            return None
        if len(options) == 1:
            return _decode(options[0], data, path, problems)
        return _decode_tagged(options, data, path, problems)
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(typing.cast(type, tp), data, path, problems)
    if origin is Literal:
        allowed = get_args(tp)
        if data not in allowed or (isinstance(data, bool) and not any(isinstance(a, bool) for a in allowed)):
            problems.append(f"{path}: must be one of {', '.join(map(repr, allowed))}, got {_shown(data)}")
        return data
    if origin is tuple:
        if not isinstance(data, list):
            problems.append(f"{path}: must be a list, got {_json_type(data)}")
            return ()
        (item,) = [a for a in get_args(tp) if a is not Ellipsis]
        return tuple(_decode(item, v, f"{path}[{i}]", problems) for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            problems.append(f"{path}: must be an object, got {_json_type(data)}")
            return {}
        _, value_type = get_args(tp)
        for key in data:
            if not _is_text(key):
                problems.append(f"{path}.{_name(key)}: a key must be valid Unicode text (it holds a lone surrogate)")
        return {k: _decode(value_type, v, f"{path}.{k}", problems) for k, v in data.items() if _is_text(k)}
    return _decode_scalar(tp, data, path, problems)


def _decode_scalar(tp: Any, data: JSON, path: str, problems: list[str]) -> Any:
    if tp is bool:
        ok = isinstance(data, bool)
    elif tp is int:
        ok = isinstance(data, int) and not isinstance(data, bool)
    elif tp is float:
        ok = isinstance(data, (int, float)) and not isinstance(data, bool)
        try:
            number = float(data) if ok else math.nan
        except OverflowError:  # an integer literal with hundreds of digits
            number = math.inf
        if ok and not math.isfinite(number):
            problems.append(f"{path}: must be a finite number, got {number!r}")
            return data
        data = number if ok else data
    elif tp is str:
        ok = isinstance(data, str)
        if ok and not _is_text(data):
            problems.append(f"{path}: must be valid Unicode text (it holds a lone surrogate)")
            return data
    else:
        raise TypeError(f"typed_json cannot decode {tp!r} (at {path})")
    if not ok:
        problems.append(f"{path}: must be {_type_name(tp)}, got {_json_type(data)}")
    return data


def _is_text(value: str) -> bool:
    """Whether `value` encodes to UTF-8: JSON's \\ud800 escapes can smuggle in lone surrogates, which do not."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _decode_tagged(options: list[Any], data: JSON, path: str, problems: list[str]) -> Any:
    by_kind = {kind: cls for cls in options for kind in _kind_of(cls)}
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind not in by_kind:
        problems.append(f"{path}.kind: must be one of {', '.join(map(repr, by_kind))}, got {_shown(kind)}")
        return None
    return _decode_dataclass(by_kind[kind], data, path, problems)


def _decode_dataclass(cls: type, data: JSON, path: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{path}: must be an object, got {_json_type(data)}")
        return None
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for unknown in sorted(set(data) - set(fields)):
        problems.append(f"{path}.{_name(unknown)}: unknown field")
    before = len(problems)
    values: dict[str, Any] = {}
    bad: set[str] = set()
    for name, field in fields.items():
        if name in data:
            mark = len(problems)
            values[name] = _decode(hints[name], data[name], f"{path}.{name}", problems)
            if len(problems) > mark:  # the checks below see its default (or None) instead
                values[name], bad = _default(field), bad | {name}
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            problems.append(f"{path}.{name}: required")
            values[name], bad = None, bad | {name}
    obj = cls(**values)
    if hasattr(obj, "problems"):
        # Cross-field checks run even when some fields were bad, so that one error names every problem. A bad
        # field gets no second complaint, and checks after one that trips over a None field are skipped.
        try:
            for problem in obj.problems():
                if re.split(r"[.:\[]", problem, maxsplit=1)[0] not in bad:
                    problems.append(f"{path}.{problem}")
        except (AttributeError, TypeError):
            pass
    return obj if len(problems) == before else None


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _type_name(tp: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[tp]


def _name(key: str) -> str:
    """A key from outside, as it can appear in a message: lone surrogates escaped, since they cannot be encoded."""
    return key if _is_text(key) else key.encode("utf-8", "backslashreplace").decode()


def _shown(data: JSON) -> str:
    """A value from outside, for a message: scalars as written, objects and lists by their type alone."""
    return repr(data) if data is None or isinstance(data, (str, int, float, bool)) else _json_type(data)


def _json_type(data: JSON) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(data), type(data).__name__
    )
