"""Direct links into hosted pages, without notifications knowing who hosts them.

An app that serves customer pages registers a builder per kind of object in its AppConfig.ready()
(the way event sinks register), e.g. `register_link_builder("proposal", build)`. A builder takes
[(organization_id, public_id), ...] and returns {(organization_id, public_id): url} for those it can
link, in the caller's transaction (it may write the tokens it mints). With no builder, no link.
"""

from collections.abc import Callable, Iterable

Builder = Callable[[list[tuple[int, str]]], dict[tuple[int, str], str]]
_builders: dict[str, Builder] = {}


def register_link_builder(kind: str, builder: Builder) -> None:
    _builders[kind] = builder


def links_for(kind: str, refs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], str]:
    builder = _builders.get(kind)
    refs = sorted(set(refs))
    if builder is None or not refs:
        return {}
    return builder(refs)
