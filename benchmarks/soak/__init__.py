"""The fault and load suite (``make soak``): see ``__main__`` for the scenarios and the summary."""
