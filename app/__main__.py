"""`python -m app` runs the `kokyaku` command."""

from app.cli import main

main()
