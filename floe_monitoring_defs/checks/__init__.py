"""Checks: one module per check kind (freshness, schema_drift, quality, availability), each owning its
applicability, cadence, evaluation, description and evidence (`kind.CheckKind`); the kinds' registry
(entry points `floe.check_kinds`), the plan that schedules them, severity rules, and the runner."""
