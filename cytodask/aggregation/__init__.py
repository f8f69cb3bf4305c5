"""cytodask.aggregation."""
