"""Customers, custom field definitions, identity resolution, merge, erase and export."""
