"""How often the worker and the web app run Python's cyclic garbage collector.

By default a generation-0 pass runs every 700 allocations, and every tenth pass of each
generation runs the next one, up to a full pass over every object in memory. The worker
allocates several objects per event (a model, its JSON-mode dict, the Faust message, futures)
and keeps its tables in memory, so those passes were about a third of its CPU (``make bench``,
direct end-to-end: 35 → 25 µs of worker CPU per event, 25 → 16 µs of the web app's). Almost
nothing either allocates forms a reference cycle (reference counting frees it at once), so
collecting generation 0 seventy times more rarely, and the older generations more rarely
still, costs memory only for the few cycles, which are still collected. Measured against
(50,000, 10, 10): 30 µs per event for the worker.

The sandbox providers keep every message they took (the inbox) in memory, and with the default
thresholds their full passes over it grew to 0.4 s every few seconds of a fan-out, stalling
every provider request meanwhile (``make bench``, outreach hand-over): tuned alike.
"""

from __future__ import annotations

import gc

#: (generation 0 every N allocations, generation 1 every N passes of 0, generation 2 every N of 1).
THRESHOLDS = (50_000, 50, 100)


def tune() -> None:
    gc.set_threshold(*THRESHOLDS)
