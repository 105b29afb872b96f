"""Every message turnout exchanges, defined once as frozen pydantic models.

- ``events``: what partners post (the wire contract, versioned by ``SCHEMA_VERSION``).
- ``people``: a person as partners describe them, with normalization.
- ``facts``: the idempotent keyed state agents write (people, memberships, attendance, pledges).
- ``tallies``: the read model organizers get, and the arithmetic that derives it from facts.
- ``partners``: the coalition's member organizations.
"""

SCHEMA_VERSION = 1
