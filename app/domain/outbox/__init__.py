"""Domain events, written in the caller's transaction; the ordered event feed and audit log."""
