"""What shops post: inbound events, orders with their lines, and per-customer purchase metrics."""
