"""Entry point of the packaged app: the same as the `voxtral-desk` console script."""
import sys

from voxtral_desk.cli import main

if __name__ == "__main__":
    sys.exit(main())
