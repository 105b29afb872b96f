"""Dashboard accounts: who may read the dashboard, kept on Kafka like everything else.

- ``book``: the accounts topic read into memory (pure; latest record per key).
- ``rules``: who may invite or remove whom, what an invitation does, when a session holds (pure).
- ``passwords``: argon2id hashing (off the event loop) and one-time tokens.
- ``throttle``: failed sign-ins per account and per client address (pure).
- ``store``: the port (``AccountLog``), its Kafka adapter and its in-memory fake, and the
  ``AccountStore`` that writes through one and keeps the book current.

Errors: ``rules.AccountRefused`` (a request the rules refuse; the message says why) and
``store.AccountsUnavailable`` (the broker did not acknowledge; retry after ``retry_after`` s).
"""
