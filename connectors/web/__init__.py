"""The web app: partner webhook ingress, tally API, health. Stateless: Kafka holds the state."""
