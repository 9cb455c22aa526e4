"""Alerting: channel plugins, routing (dedup, rate limit, rules, batching), the outbox and incidents.

No Dagster imports: the Dagster resources and sensors in `defs/` are thin wrappers around this.
"""
