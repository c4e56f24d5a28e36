"""`python -m tfinpaint.export`: see `tfinpaint.export.cli`."""

from tfinpaint.export.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
