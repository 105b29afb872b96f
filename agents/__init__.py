"""Processing logic: pure decision functions (``people``, ``facts``, ``outreach``) and the thin
Faust agents around them. ``register`` attaches every agent to a built app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.app import Pipeline
from streams.clock import from_setting
from streams.settings import Settings

if TYPE_CHECKING:
    from .outreach.agents import Outreach


def register(pipeline: Pipeline, s: Settings, outreach: Outreach | None = None) -> None:
    from . import intake

    intake.register(pipeline, s.person_key_bytes(), from_setting(s.clock))
    if outreach is not None:
        from .outreach import agents, callbacks

        agents.register(pipeline, outreach)
        callbacks.register(pipeline, outreach, s.help_text, confirm_stop=not s.twilio_advanced_opt_out)
