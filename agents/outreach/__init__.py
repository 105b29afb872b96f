"""Outreach decisions: who may be asked, on which channel, with what text, and when.

Pure functions only (no I/O, no clock: ``now`` is always a parameter):

- ``eligibility``: consent, opt-outs, target area, frequency cap, partner credit, referral codes.
- ``templates``: placeholder validation, safe rendering, SMS footer and segment counting.
- ``quiet_hours``: the recipient's time zone, when a deferred SMS may go, how long Twilio may queue it.
"""
