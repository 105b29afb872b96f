"""The edges: the web app (partner webhook ingress and tally API) and, later, providers."""
