"""Frozen dataclass configs: validation at the boundary and a stable content hash (``cfg_id``).

Every experiment's config is a frozen dataclass deriving from :class:`Config`. Fields hold plain
values (bool, int, float, str, tuples of those, ``Literal`` choices) so that a config is data: it
serialises to JSON, hashes stably and round-trips from a row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin


class ConfigError(ValueError):
    """A config field has a value of the wrong type or outside its allowed set."""


# The three budgets every experiment is defined at (SPEC section 1): seconds on a CPU for tests and CI;
# the grid behind the book, <= 2 h on a 2-core machine; larger budgets for one GPU, in <= 9-minute shards.
PROFILES = ("smoke", "cpu", "gpu")


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if get_origin(tp) is tuple:
        args = get_args(tp)
        inner = _type_name(args[0]) if args else "any"
        return f"tuple of {inner}"
    return getattr(tp, "__name__", str(tp))


def _check(value: Any, tp: Any) -> Any:
    """Return ``value`` coerced to ``tp`` (int->float, list->tuple) or raise TypeError."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp) and type(value) in {type(a) for a in get_args(tp)}:
            return value
        raise TypeError
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _check(value, arg)
            except TypeError:
                continue
        raise TypeError
    if tp is type(None):
        if value is None:
            return None
        raise TypeError
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise TypeError
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(v, args[0]) for v in value)
        if len(args) != len(value):
            raise TypeError
        return tuple(_check(v, a) for v, a in zip(value, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if tp is str:
        if isinstance(value, str):
            return value
        raise TypeError
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise TypeError


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of all experiment configs. Subclasses add fields with commented defaults.

    ``__post_init__`` checks every field against its annotation, so a wrong type fails at
    construction with a message naming the field, the value and what is allowed. Subclasses
    add range checks in ``check()``.
    """

    seed: int = 0  # torch / numpy seed of this run

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            try:
                coerced = _check(value, hints[f.name])
            except TypeError:
                raise ConfigError(
                    f"{type(self).__name__}.{f.name} = {value!r} ({type(value).__name__}) "
                    f"is not allowed: expected {_type_name(hints[f.name])}"
                ) from None
            if isinstance(coerced, float) and not math.isfinite(coerced):
                raise ConfigError(f"{type(self).__name__}.{f.name} = {value!r} must be finite")
            object.__setattr__(self, f.name, coerced)
        self.check()

    def check(self) -> None:
        """Range checks beyond types; raise :class:`ConfigError` naming field, value and range."""

    def require(self, ok: bool, field: str, allowed: str) -> None:
        """Raise a :class:`ConfigError` for ``field`` unless ``ok``."""
        if not ok:
            raise ConfigError(
                f"{type(self).__name__}.{field} = {getattr(self, field)!r} is not allowed: {allowed}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no field(s) {unknown}; fields are {sorted(names)}"
            )
        return cls(**data)

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def cfg_id(experiment: str, config: Config) -> str:
    """Stable content hash of (experiment name, config fields): 12 hex characters.

    Canonical JSON (sorted keys, no whitespace) so the hash does not depend on field order
    or on Python's hash seed.
    """
    payload = json.dumps(
        {"experiment": experiment, "config": config.to_dict()},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def grid(base: Config, **axes: typing.Iterable[Any]) -> list:
    """Cartesian product of ``axes`` applied to ``base``, in a stable order."""
    configs = [base]
    for name, values in axes.items():
        configs = [c.replace(**{name: v}) for c in configs for v in values]
    return configs
