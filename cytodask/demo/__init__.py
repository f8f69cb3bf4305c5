"""cytodask.demo."""
