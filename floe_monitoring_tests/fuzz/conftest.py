"""Hypothesis profiles of the fuzz tests, chosen by HYPOTHESIS_PROFILE (never a FLOE_* variable of the developer).

* `ci` (the default): a bounded number of examples, derandomized, so CI runs the same mutants every time;
* `long`: thousands of random examples, for a fuzzing session (README: `HYPOTHESIS_PROFILE=long`).

Neither keeps a database of examples (nothing is written into the repository). `deadline=None`: the time a
contract takes is bounded by construction (file size, nesting and alias limits), not by a clock.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
    ],
}
settings.register_profile("ci", max_examples=40, derandomize=True, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("long", max_examples=5000, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
