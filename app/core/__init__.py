"""Cross-cutting pieces with no business rules."""
