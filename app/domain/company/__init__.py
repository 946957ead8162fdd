"""Companies (B2B accounts) with their contacts and deals."""
