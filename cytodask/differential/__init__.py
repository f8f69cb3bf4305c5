"""cytodask.differential."""
