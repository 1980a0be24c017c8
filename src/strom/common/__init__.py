"""Values and small helpers shared by every layer."""
