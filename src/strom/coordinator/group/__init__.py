"""The group coordinator: classic groups and consumer groups (consumer/); pure state
machines; see coordinator.py."""
