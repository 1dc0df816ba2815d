"""The backend contract: every available backend through the same cases."""
