"""`python -m xling_align ...` is the same program as `xling-align ...` (`accelerate launch -m xling_align` works)."""

from xling_align.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
