"""The transaction coordinator (KIP-98): pure state machines over __transaction_state."""
