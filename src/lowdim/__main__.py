"""``python -m lowdim`` runs the ``lowdim`` command."""

from lowdim.cli import main

if __name__ == "__main__":
    main()
