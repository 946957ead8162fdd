"""Kokyaku: an API-first, headless CRM service."""
