"""A registry is a dict from a snake_case name to a constructor plus facts about it.

Datasets, corruptions, models and regularisers each have one; adding an entry is one decorated
function. Every fact about an entry lives in its `meta` (read through small helpers such as
`corruptions.has_level`), so no code, page or test branches on an entry's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    name: str
    fn: Callable[..., Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.meta.get("label", self.name)


class Registry:
    """`required`: facts every entry must give (a missing one fails at import, not in a page);
    `defaults`: facts most entries share, which an entry gives only where it differs."""

    def __init__(
        self, kind: str, required: tuple[str, ...] = (), defaults: dict[str, Any] | None = None
    ) -> None:
        self.kind = kind
        self.required = required
        self.defaults = dict(defaults or {})
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, **meta: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            missing = [fact for fact in self.required if fact not in meta]
            if missing:
                raise ValueError(f"{self.kind} {name!r} does not say its {', '.join(missing)}")
            self._entries[name] = Entry(name, fn, self.defaults | meta)
            return fn

        return add

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)
