"""The shape limits of a YAML document, checked before and while composing (for yamlio).

A document may nest at most :data:`MAX_DEPTH` levels, hold at most :data:`MAX_DOC_NODES` nodes as
written (keys included) and :data:`MAX_MERGES` merge keys, and use no collection as a mapping key.
Each limit stops a known failure: libyaml's composer recurses in C (30,000 nested ``[`` were a
SIGSEGV), ruamel's round-trip composer takes ~35 us a node (a plain 4 MB list: 30-70 s, 2 GB),
ruamel records every merge in a list it searches by equality (quadratic: 2,000 merges of one
anchor took 9 s), and it builds nested complex keys in exponential time (30 bytes of ``? ``:
forever). Neither Helm nor Kestra needs any of these.

:func:`scan` checks them all on libyaml's event stream (no node composed, no recursion, ~1 us an
event) before any composer runs; :func:`guarded_classes` gives ruamel a scanner, composer and
constructor that check them again while composing (for text the event pass could not read to the
end, e.g. a syntax only libyaml refuses). Both raise :class:`ShapeError`, which
:mod:`kestra_ops.yamlio` turns into its rule and message.
"""

from __future__ import annotations

import functools

MAX_DEPTH = 200
# nodes as written, keys included (100,000 take the round-trip composer ~3.5 s; 10 x the largest
# values file we know of)
MAX_DOC_NODES = 100_000
MAX_MERGES = 500  # merge keys (<<) in one document


class ShapeError(Exception):
    """A limit passed at ``mark``: ``kind`` is too-deep, too-many, complex-key, merges or
    recursive-alias (an alias inside the node it names: ruamel would load it as null)."""

    def __init__(self, kind: str, mark):
        super().__init__(kind)
        self.kind = kind
        self.mark = mark


def _merge_key(event, scalar_class) -> bool:
    return isinstance(event, scalar_class) and event.value == "<<" and not event.style


def scan(text: str) -> None:
    """Raise :class:`ShapeError` at the first limit ``text`` passes, reading libyaml's events.
    A syntax error ends the pass quietly: the loader that follows reports it, under the
    composer's guards."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    start, end, node = yaml.CollectionStartEvent, yaml.CollectionEndEvent, yaml.NodeEvent
    nodes = merges = 0
    open_: list[list[bool]] = []  # per open collection: [is a mapping, next node is a key]
    collections: set[str] = set()  # anchors that name a collection
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, end):
                if open_:
                    open_.pop()
                continue
            if not isinstance(event, node):
                continue
            nodes += 1
            if nodes > MAX_DOC_NODES:
                raise ShapeError("too-many", event.start_mark)
            is_key = bool(open_) and open_[-1][0] and open_[-1][1]
            if open_ and open_[-1][0]:
                open_[-1][1] = not open_[-1][1]
            if is_key and (isinstance(event, start) or (
                    isinstance(event, yaml.AliasEvent) and event.anchor in collections)):
                raise ShapeError("complex-key", event.start_mark)
            if is_key and _merge_key(event, yaml.ScalarEvent):
                merges += 1
                if merges > MAX_MERGES:
                    raise ShapeError("merges", event.start_mark)
            if isinstance(event, start):
                if len(open_) >= MAX_DEPTH:
                    raise ShapeError("too-deep", event.start_mark)
                open_.append([isinstance(event, yaml.MappingStartEvent), True])
            if event.anchor and not isinstance(event, yaml.AliasEvent):
                (collections.add if isinstance(event, start) else collections.discard)(
                    event.anchor)
    except (yaml.YAMLError, UnicodeError, ValueError):  # e.g. a lone surrogate from JSON
        return


@functools.lru_cache(maxsize=1)
def guarded_classes():
    """ruamel's round-trip scanner, composer and constructor, with the limits checked."""
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
    from ruamel.yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
    from ruamel.yaml.nodes import CollectionNode, MappingNode
    from ruamel.yaml.scanner import RoundTripScanner

    class GuardedScanner(RoundTripScanner):
        def fetch_flow_collection_start(self, TokenClass, to_push):
            # refused while scanning: ruamel's scanner is quadratic in the flow depth
            if self.flow_level >= MAX_DEPTH:
                raise ShapeError("too-deep", self.reader.get_mark())
            super().fetch_flow_collection_start(TokenClass, to_push)

    class GuardedComposer(Composer):
        def compose_node(self, parent, index):
            event = self.parser.peek_event()
            counts = self.__dict__.setdefault("_counts", [0, 0, 0])  # nodes, depth, merges
            counts[0] += 1
            if counts[0] > MAX_DOC_NODES:
                raise ShapeError("too-many", event.start_mark)
            if counts[1] >= MAX_DEPTH:
                raise ShapeError("too-deep", event.start_mark)
            if index is None and isinstance(parent, MappingNode):  # a key
                if isinstance(event, CollectionStartEvent) or (
                        isinstance(event, AliasEvent)
                        and isinstance(self.anchors.get(event.anchor), CollectionNode)):
                    raise ShapeError("complex-key", event.start_mark)
                if _merge_key(event, ScalarEvent):
                    counts[2] += 1
                    if counts[2] > MAX_MERGES:
                        raise ShapeError("merges", event.start_mark)
            counts[1] += 1
            try:
                return self._guarded_compose(event, parent, index)
            finally:
                counts[1] -= 1

        def _guarded_compose(self, event, parent, index):
            # an alias is recursive when the latest definition of its anchor is still open
            open_anchors = self.__dict__.setdefault("_open_anchors", [])
            defined = self.__dict__.setdefault("_anchor_defs", {})
            if isinstance(event, AliasEvent):
                if (event.anchor, defined.get(event.anchor)) in open_anchors:
                    raise ShapeError("recursive-alias", event.start_mark)
                return super().compose_node(parent, index)
            if event.anchor is None:
                return super().compose_node(parent, index)
            defined[event.anchor] = defined.get(event.anchor, 0) + 1
            open_anchors.append((event.anchor, defined[event.anchor]))
            try:
                return super().compose_node(parent, index)
            finally:
                open_anchors.pop()

    class GuardedConstructor(RoundTripConstructor):
        def construct_non_recursive_object(self, node, tag=None):
            # a value ruamel cannot build (9 x 5,000, 2024-02-30, !!int abc, !!bool maybe) is
            # a syntax error at that node, never echoing the value (it may be a secret)
            try:
                return super().construct_non_recursive_object(node, tag)
            except (ValueError, KeyError, TypeError, OverflowError, IndexError,
                    ArithmeticError) as err:
                reason = str(err).split(":")[0] if not isinstance(err, KeyError) else "unknown"
                if "Exceeds the limit" in reason or "digits" in str(err):
                    reason = "a number with thousands of digits (quote it if it is text)"
                tag = (tag or node.tag or "").rsplit(":", 1)[-1]
                raise ConstructorError(None, None, f"cannot read this {tag} value: {reason}",
                                       node.start_mark) from None

    return GuardedScanner, GuardedComposer, GuardedConstructor
