"""Import jobs: CSV or JSON Lines of customers or companies, applied in the background."""
