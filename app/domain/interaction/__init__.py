"""What the team logs with customers: notes, calls, emails, meetings, support, surveys, tasks."""
