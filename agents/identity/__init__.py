"""Identity resolution: one person however partners know them (see ``resolve``).

``rules`` holds the pure decisions, ``index`` finds a person's facts, ``resolve`` moves events,
links and merged facts between partitions; ``register`` adds the agent that reads the identity
topic. Intake calls ``Resolver.arrived`` before it applies a person event.
"""

from __future__ import annotations

from typing import Any

from streams.app import Pipeline
from streams.batching import key_text

from .resolve import MERGED, Apply, Resolver, pass_on, target_of

__all__ = ["MERGED", "Resolver", "pass_on", "register", "target_of"]


def register(p: Pipeline, resolver: Resolver, apply: Apply) -> None:
    """The identity topic, a fetch at a time (``Pipeline.take_in_batches``); a batch's folds are
    cleared by ``resolver.flush`` once durable, before the batch is acked."""
    def resolve_identity(batch: list[Any]) -> None:
        for m in batch:
            resolver.handle(m.partition, key_text(m.key), m.value, apply, where={"topic": m.topic, "partition": m.partition, "offset": m.offset})

    p.take_in_batches(p.identity, resolve_identity, flush=resolver.flush)
