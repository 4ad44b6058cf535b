"""Shared Hypothesis strategies and settings of the fuzz tests (tests/test_fuzz_*.py; no tests here).

Examples are modest (the whole fuzz suite runs in well under 2 minutes on 2 cores) and deadline-free
(no timed tests): the point is the breadth of the inputs, run on every CI build."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
FUZZ_SLOW = settings(FUZZ, max_examples=50)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
# text that is mostly JSON punctuation: brackets, quotes, escapes, numbers, literals
json_ish_text = st.text(alphabet='[]{}":,\\ 0123456789.eE-+ntrufalsNaIiy\n\t', max_size=200)


def depth_of(value: Any) -> int:
    """Nesting depth of a JSON value as `safejson.nesting_depth` counts it ([] and {} are 1)."""
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0
