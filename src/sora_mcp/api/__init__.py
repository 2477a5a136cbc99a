"""The Videos API wire client: models, backend profiles, retries, polling."""
