"""Telling other processes that events were committed (PostgreSQL NOTIFY).

A statement trigger on `domain_event` (migration 0017) notifies this channel whenever a
transaction writes events; PostgreSQL delivers the notification only if the commit succeeds, and
once per transaction however many statements wrote events. Dispatchers listening on the channel
wake at once instead of at their next poll. Done by the database rather than by a statement of
ours at commit, it costs no round trip.
"""

CHANNEL = "kokyaku_outbox"
