"""Workspaces, API keys and their scopes, team members, and the audit log."""
