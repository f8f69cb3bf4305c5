"""cytodask.activity."""
