"""Checks: pure check logic and severity rules, plus the runner that feeds them and stores results."""
