"""Fuzz: user shapes tables (Hypothesis). The entry check (shapes_input) refuses a table with one
UserError line, or passes it, and then the engine's table loads and answers every lookup with a sane
ShapeSpec: the check is at least as strict as what the engine needs."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from fuzz_support import FUZZ, json_values
from hypothesis import given
from hypothesis import strategies as st

from inference_server.analysis.shapes import ROLES, SHAPES, load_table, normalize
from inference_server.errors import UserError
from inference_server.shapes_input import check_shapes_table

_DIR = Path(tempfile.mkdtemp(prefix="img2maya-fuzz-shapes-"))
names = st.sampled_from(["car", "tree", "wall-brick", "sky-other", "person, individual", ""]) | st.text(max_size=10)
sizes = st.lists(st.floats(-1, 50) | st.integers(-1, 50), min_size=2, max_size=4)
flags = {f: st.booleans() | json_values for f in ("slab", "depth_from_width", "trunk", "ref", "skip")}
entry_fields = {"synonyms": st.lists(names, max_size=3) | json_values,
                "role": st.sampled_from(ROLES) | json_values, "shape": st.sampled_from(SHAPES) | json_values,
                "size": sizes | json_values, "standing": st.sampled_from([True, False, "auto"]) | json_values,
                **flags}
classes = st.fixed_dictionaries({"name": names | json_values}, optional={**entry_fields, "colour": json_values})
role_specs = st.fixed_dictionaries({}, optional={k: entry_fields[k] for k in
                                                 ("shape", "size", "standing", "slab", "depth_from_width")})
tables = st.fixed_dictionaries({}, optional={
    "schema": st.just("img2maya/shapes@1") | json_values,
    "description": st.text(max_size=10) | json_values,
    "classes": st.lists(classes | json_values, max_size=4) | json_values,
    "roles": st.dictionaries(st.sampled_from(ROLES) | st.text(max_size=4), role_specs | json_values, max_size=3),
    "default": st.fixed_dictionaries({}, optional={"role": entry_fields["role"], "shape": entry_fields["shape"]}),
    "skip": st.lists(names, max_size=3) | json_values,
    "families": st.lists(st.fixed_dictionaries({"match": names, "use": names}) | json_values, max_size=3),
    "extra": json_values,
})


def _write(data: Any) -> Path:
    path = _DIR / "table.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@FUZZ
@given(table=tables | json_values)
def test_a_table_is_refused_in_one_line_or_works_in_the_engine(table: Any) -> None:
    path = _write(table)
    try:
        check_shapes_table(path)
    except UserError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert isinstance(table, dict) and isinstance(table["classes"], list)
    engine_table = load_table(str(path))  # must not raise: the check let it through
    probes = ["car", "tree", "wall-brick", "sky-other", "person, individual", "unknown thing", ""]
    probes += [c["name"] for c in table["classes"]]
    for name in probes:
        spec = engine_table.lookup(name)
        assert spec.role in ROLES and spec.shape in SHAPES
        assert len(spec.size) == 3 and all(math.isfinite(v) and v >= 0 for v in spec.size)
        assert spec.standing in (True, False, "auto")


valid_classes = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=10).filter(str.strip)},
    optional={"synonyms": st.lists(names, max_size=3), "role": st.sampled_from(ROLES),
              "shape": st.sampled_from(SHAPES), "size": st.lists(st.floats(0, 50), min_size=3, max_size=3),
              "standing": st.sampled_from([True, False, "auto"]), **{f: st.booleans() for f in flags}})
valid_tables = st.fixed_dictionaries({"classes": st.lists(valid_classes, max_size=4)}, optional={
    "roles": st.dictionaries(st.sampled_from(ROLES), st.fixed_dictionaries(
        {}, optional={"shape": st.sampled_from(SHAPES), "size": st.lists(st.floats(0, 50), min_size=3, max_size=3)}),
        max_size=3),
    "skip": st.lists(names, max_size=2),
    "families": st.lists(st.fixed_dictionaries({"match": names, "use": names}), max_size=2)})


@FUZZ
@given(table=valid_tables)
def test_a_well_formed_table_passes_and_its_classes_are_used(table: dict[str, Any]) -> None:
    """Every table of the documented layout passes the check, and the engine gives each class the shape and
    size it lists (unless a later entry, a synonym or `skip` claims the name)."""
    path = _write(table)
    check_shapes_table(path)
    engine_table = load_table(str(path))
    for c in table["classes"]:
        later = table["classes"][table["classes"].index(c) + 1:]
        claimed = {normalize(n) for d in later for n in [d["name"], *d.get("synonyms", [])]}
        if normalize(c["name"]) in claimed | {normalize(n) for n in table.get("skip", [])}:
            continue
        found = engine_table.lookup(c["name"])
        if found.skip:
            continue
        if "shape" in c:
            assert found.shape == c["shape"]
        if "size" in c:
            assert list(found.size) == [float(v) for v in c["size"]]
