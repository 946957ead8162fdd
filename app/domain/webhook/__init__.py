"""Webhook endpoints and deliveries: Standard Webhooks signing, the SSRF guard and the transport."""
