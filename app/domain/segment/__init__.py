"""Segments: customers that belong together, by a filter kept current or by hand."""
