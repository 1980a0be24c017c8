"""The classic group coordinator: pure state machines; see coordinator.py."""
