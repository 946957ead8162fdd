"""HTTP-only shapes of API v1: list envelopes, the event feed, the audit log.

Resource shapes live with their domain (`app/domain/*/schemas.py`), because domain events carry
the resource exactly as the API shows it.
"""
