"""`python -m camwatch` runs the same CLI as the `camwatch` console script."""

from camwatch.cli import main

if __name__ == "__main__":
    main()
