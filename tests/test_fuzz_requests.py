"""Fuzz: the server's request parser and request handling (Hypothesis). Whatever a line holds, the reply
is one JSON line with a non-internal code (or a result), and the server still answers `hello`."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import FUZZ, depth_of, json_ish_text, json_values
from hostile_support import InProcessServer, make_inputs
from hypothesis import given
from hypothesis import strategies as st
from test_server_support import FakePipeline

from inference_server.limits import REQUEST_MAX_DEPTH
from inference_server.safejson import JsonInputError, loads, nesting_depth
from inference_server.server import RequestError, _parse_request

_ROOT = Path(tempfile.mkdtemp(prefix="img2maya-fuzz-requests-"))
_INPUTS = make_inputs(_ROOT / "in")
_IDS = itertools.count(1)
OPTION_NAMES = ["min_area_px", "color_stat", "depth_kind", "camera_height_m", "shapes_table", "max_pixels",
                "recursion", "bogus"]


@pytest.fixture(scope="module")
def srv():
    s = InProcessServer(FakePipeline(), _ROOT / "cache")
    yield s
    s.close()


def _fields() -> dict[str, Any]:
    paths = st.sampled_from([str(_INPUTS.photo), str(_ROOT / "nope.png"), "", str(_ROOT), str(_INPUTS.names)])
    return {
        "photo": paths | json_values,
        "recursion": st.integers(-2, 7) | json_values,
        "options": st.dictionaries(st.sampled_from(OPTION_NAMES), json_values, max_size=3) | json_values,
        "focal_px": st.floats(-10, 1e6) | st.sampled_from([1e300, 1e-300, 0]) | json_values,
        "fov_deg": st.floats(-10, 400) | json_values,
        "seg_model": st.sampled_from(["fake-seg", "x"]) | json_values,
        "depth_model": st.sampled_from(["none", "fake-depth"]) | json_values,
        "out_dir": st.sampled_from([str(_ROOT / "out"), str(_INPUTS.photo), "/proc/1/x", ""]) | json_values,
        "ref": st.integers(0, 5) | json_values,
        "photo_sha256": st.text(max_size=8) | json_values,
        "target": st.integers(0, 5) | json_values,
        "supersede": st.booleans() | json_values,
    }


requests = st.fixed_dictionaries(
    {"type": st.sampled_from(["hello", "analyze", "regenerate", "cancel", "teleport"]) | json_values},
    optional=_fields())


def _check(msg: dict[str, Any]) -> None:
    assert msg["type"] in ("hello", "result", "error", "cancelled", "ack", "queued", "progress"), msg
    if msg["type"] == "error":
        assert msg["code"] in ("bad_json", "bad_request", "unknown_type", "user_error", "not_cached"), msg
        assert isinstance(msg["message"], str) and "\n" not in msg["message"]


@FUZZ
@given(req=requests, weird_id=st.one_of(st.none(), json_values))
def test_any_request_object_gets_a_non_internal_reply(srv: InProcessServer, req: dict[str, Any],
                                                      weird_id: Any) -> None:
    req_id = next(_IDS) if weird_id is None else weird_id
    req = {**req, "id": req_id}
    start = len(srv.messages())
    msg = srv.ask(json.dumps(req), req_id if isinstance(req_id, str | int) else None)  # the id it is answered with
    _check(msg)
    for m in srv.messages()[start:]:
        _check(m)
    assert srv.alive()


@FUZZ
@given(raw=st.binary(max_size=300) | json_ish_text.map(str.encode))
def test_any_line_of_bytes_leaves_the_server_answering(srv: InProcessServer, raw: bytes) -> None:
    start = len(srv.messages())
    srv.server.handle_line(raw)
    assert srv.alive()
    for m in srv.messages()[start:]:
        _check(m)


@FUZZ
@given(text=json_ish_text | st.text(max_size=100))
def test_the_request_parser_raises_only_request_errors(text: str) -> None:
    try:
        value = _parse_request(text)
    except RequestError as exc:
        assert exc.code in ("bad_json", "bad_request") and "\n" not in str(exc)
    else:
        assert depth_of(value) <= REQUEST_MAX_DEPTH


@FUZZ
@given(value=json_values, extra=st.integers(0, 40))
def test_nesting_depth_is_the_depth_of_the_value(value: Any, extra: int) -> None:
    """Brackets and escaped quotes inside strings are not nesting; `extra` wrapping lists are."""
    text = "[" * extra + json.dumps(value) + "]" * extra
    assert nesting_depth(text) == depth_of(value) + extra
    limit = depth_of(value) + extra
    assert loads(text, "x", max_bytes=1 << 20, max_depth=limit) == json.loads(text)
    if limit:
        with pytest.raises(JsonInputError, match=f"nested {limit} levels deep, over the limit of {limit - 1}"):
            loads(text, "x", max_bytes=1 << 20, max_depth=limit - 1)
