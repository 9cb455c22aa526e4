"""The executor of the checks jobs, from the monitoring config's `executor` (config.ExecutorConfig).

Only the checks jobs (one per check type and cadence) get it: their steps are the chunks of checks worth
spreading over processes or pods. The registry and SLA jobs are one small step each and keep Dagster's default.
"""

from typing import Any

import dagster as dg

from floe_monitoring_defs.config import ExecutorConfig


def checks_executor(config: ExecutorConfig) -> dg.ExecutorDefinition | None:
    """The executor definition for `config`; None for `default` (the job then keeps Dagster's default executor,
    exactly as before the setting existed)."""
    if config.type == "default":
        return None
    if config.type == "in_process":
        return dg.in_process_executor
    if config.type == "multiprocess":
        if config.max_concurrent is None:
            return dg.multiprocess_executor
        return dg.multiprocess_executor.configured({"max_concurrent": config.max_concurrent})
    # Imported here: the Kubernetes client it brings is only worth its import time where steps become pods.
    from dagster_k8s import k8s_job_executor

    options: dict[str, Any] = {}
    if config.max_concurrent is not None:
        options["max_concurrent"] = config.max_concurrent
    if config.step_resources is not None:
        resources = config.step_resources.model_dump(exclude_defaults=True)
        options["step_k8s_config"] = {"container_config": {"resources": resources}}
    executor: dg.ExecutorDefinition = k8s_job_executor.configured(options) if options else k8s_job_executor
    return executor
