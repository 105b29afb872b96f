"""Processing logic: pure decision functions (``people``, ``facts``) and the thin Faust agent
around them (``intake``). ``register(pipeline)`` attaches every agent to a built app."""

from streams.app import Pipeline


def register(pipeline: Pipeline) -> None:
    from . import intake

    intake.register(pipeline)
