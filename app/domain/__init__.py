"""Business domains: each holds its entities, repository and service side by side."""
