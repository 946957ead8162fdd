"""Workflows: a trigger, conditions in the filter DSL, and ordered actions run durably."""
