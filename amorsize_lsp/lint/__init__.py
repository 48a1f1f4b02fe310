"""The amorsize-lint CLI for pre-commit and CI."""
