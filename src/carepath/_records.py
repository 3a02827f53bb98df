"""A faster ``__init__`` for the engine's frozen, slotted dataclasses.

The engine builds several immutable records per step (the new :class:`~carepath.state.CaseState`,
its clocks, signals, actions, the :class:`~carepath.engine.engine.Step`). A frozen dataclass's generated
``__init__`` stores each field through ``object.__setattr__`` looked up by name, which is about
half of what building such a record costs. :func:`fast_init` replaces it with an ``__init__``
of the same signature and defaults that stores through the slots' own descriptors. Everything
else the dataclass provides stays: fields, ``replace``, equality, hashing, ``repr`` and
immutability after construction.

The replacement is generated from the class's own field list (as :mod:`dataclasses` does); no
outside input reaches the generated source. :func:`slot_setter` gives one slot's descriptor
setter, for code that fills a record's slots itself (an event decoded on the fast path, a native
step's lazy state).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["fast_init", "slot_setter"]

T = TypeVar("T")

_FACTORY = object()  # "the caller did not pass this field": call its default_factory


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen slotted dataclass ``cls`` a descriptor-based ``__init__`` (same signature)."""
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__, which the fast __init__ would skip")
    ns: dict[str, Any] = {"_FACTORY": _FACTORY}
    params: list[str] = []
    body: list[str] = []
    for i, f in enumerate(dataclasses.fields(cls)):
        if not f.init or f.kw_only:
            raise TypeError(
                f"{cls.__name__}.{f.name}: init=False and kw_only fields are not supported"
            )
        if f.default is not dataclasses.MISSING:
            ns[f"_default_{i}"] = f.default
            params.append(f"{f.name}=_default_{i}")
        elif f.default_factory is not dataclasses.MISSING:
            ns[f"_factory_{i}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            body.append(f"    if {f.name} is _FACTORY:\n        {f.name} = _factory_{i}()")
        else:
            params.append(f.name)
        ns[f"_set_{i}"] = cls.__dict__[f.name].__set__
        body.append(f"    _set_{i}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(source, ns)  # generated from the dataclass's own field names only
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def slot_setter(cls: type[Any], name: str) -> Callable[[Any, Any], None]:
    """The ``__set__`` of slot ``name`` of ``cls`` (its member descriptor, found on the MRO): a
    frozen record's field set in about a third of ``object.__setattr__``'s time, which looks the
    descriptor up on every call."""
    for k in cls.__mro__:
        d = k.__dict__.get(name)
        if d is not None and hasattr(d, "__set__"):
            setter: Callable[[Any, Any], None] = d.__set__
            return setter
    raise AttributeError(f"{cls.__name__} has no slot {name!r}")
