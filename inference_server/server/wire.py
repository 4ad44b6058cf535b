"""The protocol's lines: reading bounded request lines, decoding them, encoding replies (one line each)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import IO, Any

from ..limits import REQUEST_MAX_BYTES, REQUEST_MAX_DEPTH
from .checks import RequestError


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none)."""
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


def bounded_lines(stream: IO[bytes], limit: int) -> Iterator[bytes | None]:
    """The lines of `stream`, each read with at most `limit` bytes (+ its newline) in memory; None stands
    for a longer line, which is read past in pieces and skipped (never held whole)."""
    readline = stream.readline
    while True:
        line = readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:
                rest = readline(1 << 16)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
            continue
        yield line


def parse_request(text: str) -> Any:
    """A request line's JSON, bounded (limits.REQUEST_MAX_*); RequestError `bad_json`/`bad_request`."""
    from ..safejson import JsonInputError, decode, nesting_depth

    size = len(text.encode("utf-8", "surrogatepass"))
    if size > REQUEST_MAX_BYTES:
        raise RequestError("bad_request",
                           f"request line of {size} bytes is over the {REQUEST_MAX_BYTES} byte limit")
    depth = nesting_depth(text)
    if depth > REQUEST_MAX_DEPTH:
        raise RequestError("bad_request",
                           f"request nested {depth} levels deep, over the limit of {REQUEST_MAX_DEPTH}")
    try:
        return decode(text)
    except JsonInputError as exc:
        raise RequestError("bad_json", f"malformed JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RequestError("bad_json", f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit integer
        raise RequestError("bad_json", f"unusable JSON: {one_line(exc)[:200]}") from None


def encode_scene(scene: dict[str, Any]) -> str:
    """A scene (or any protocol message) as compact JSON (no NaN): one line, the C encoder (an indented
    dump is ~4x slower)."""
    return json.dumps(scene, allow_nan=False, separators=(",", ":"), default=_json_default)


def encode_reply(message: dict[str, Any]) -> str:
    """One protocol line (without its newline). A result's scene already encoded (`_scene_text`, the text
    of scene.json) is spliced in, not encoded again; a reply that cannot be encoded becomes an
    `internal` error."""
    scene_text = message.get("_scene_text")
    try:
        if isinstance(scene_text, str) and "scene" in message:
            rest = {k: v for k, v in message.items() if k not in ("scene", "_scene_text")}
            return encode_scene(rest)[:-1] + ',"scene":' + scene_text + "}"
        return encode_scene(message)
    except (TypeError, ValueError) as exc:
        return json.dumps({"type": "error", "id": message.get("id"), "code": "internal",
                           "message": f"reply not serialisable: {one_line(exc)}"})


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays and paths in a reply become plain JSON (a pipeline may leak them)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
