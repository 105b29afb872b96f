"""Processing logic: pure decision functions (``people``, ``facts``, ``outreach``) and the thin
Faust agents around them. ``register`` attaches every agent to a built app."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from streams.app import Pipeline
from streams.clock import from_setting
from streams.coalition import CoalitionFile, backbone_name
from streams.settings import Settings

if TYPE_CHECKING:
    from .outreach.agents import Outreach


def register(pipeline: Pipeline, s: Settings, outreach: Outreach) -> None:
    """Every agent, outreach included: planning and the send agent's decisions never depend on
    provider credentials (``outreach.outbox`` ``None``: nothing is sent)."""
    from . import identity, intake
    from .outreach import agents, callbacks
    from .outreach.receipts import help_texts

    resolver = identity.Resolver(pipeline, s.person_key_bytes(), merged=partial(agents.plan_again, pipeline, outreach))
    intake.register(pipeline, s.person_key_bytes(), from_setting(s.clock), resolver)
    identity.register(pipeline, resolver, intake.record)
    agents.register(pipeline, outreach)
    coalition = CoalitionFile(s.coalition, every=1.0)
    callbacks.register(pipeline, outreach, lambda: help_texts(s.help_text, s.help_text_es, backbone_name(coalition)), s.person_key_bytes())
