"""Identity resolution: one person however partners know them (see ``resolve``).

``rules`` holds the pure decisions, ``index`` finds a person's facts, ``resolve`` moves events,
links and merged facts between partitions; ``register`` adds the agent that reads the identity
topic. Intake calls ``Resolver.arrived`` before it applies a person event.
"""

from __future__ import annotations

from streams.app import Pipeline

from .resolve import Apply, Resolver, target_of

__all__ = ["Resolver", "register", "target_of"]

BATCH = 500


def register(p: Pipeline, resolver: Resolver, apply: Apply) -> None:
    @p.app.agent(p.identity, name="resolve_identity")
    async def resolve_identity(stream):  # noqa: ANN001 - Faust's stream type
        async for event in p.batches(stream, BATCH, flush=resolver.flush):
            m = event.message
            resolver.handle(m.partition, event.key, event.value, apply, where={"topic": m.topic, "partition": m.partition, "offset": m.offset})
