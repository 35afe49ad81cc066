"""The caller's side of capture: scopes (run, stage, batch, sample, operation, deployment), the
session they share, the checks every capture call makes, and how scopes end (exit, signals)."""
