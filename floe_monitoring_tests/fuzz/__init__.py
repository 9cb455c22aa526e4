"""Fuzz tests: bad input never takes monitoring down (property-based mutation of contracts, special files)."""
