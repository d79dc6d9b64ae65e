"""``python -m app`` runs the command line, like the ``cryptopredict`` script."""

from app.cli import main

main()
