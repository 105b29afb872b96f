"""Dashboard accounts: who may read the dashboard, kept on Kafka like everything else.

- ``book``: the accounts topic read into memory (pure; latest record per key).
- ``rules``: who may invite or remove whom, what an invitation does, when a session holds (pure).
- ``passwords``: argon2id hashing (off the event loop) and one-time tokens.
- ``throttle``: failed sign-ins per account and per client address (pure).
- ``log``: the port (``AccountLog``), its Kafka adapter (the accounts topic) and its
  in-memory fake.
- ``store``: ``AccountStore``, every change as the rules allow it, written through a log.

Errors: ``rules.AccountRefused`` (a request the rules refuse; the message says why; its
``status`` the HTTP answer) and ``log.AccountsUnavailable`` (the broker did not acknowledge;
retry after ``retry_after`` s).
"""
