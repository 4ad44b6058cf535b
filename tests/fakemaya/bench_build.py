"""Build N objects on the fake maya.cmds and print maya.cmds calls per object and wall time.

    .venv/bin/python tests/fakemaya/bench_build.py [--objects 1000] [--colours 50] [--regenerate]

--regenerate builds twice and reports the second build: the previous build's deletion included.

The fake's own cost is included, so the time says how lean the builder's Python is, not how fast
Maya is; the call count is what matters in Maya (each cmds call costs roughly 10-100 us there). Both
are figures to watch, not targets: the builder uses only documented Maya behaviour (the plain
shading network, 5 calls per distinct colour) even where a trick would save calls.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.join(ROOT, "scripts")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--colours", type=int, default=0, help="distinct colours (0 = every object its own)")
    ap.add_argument("--regenerate", action="store_true", help="measure a rebuild (deletes the first build)")
    args = ap.parse_args()
    from img2maya import builder
    from maya import _fake

    with open(os.path.join(ROOT, "tests", "data", "example_scene.json"), encoding="utf-8") as fh:
        scene = json.load(fh)
    shapes = ["cube", "cylinder", "sphere", "cone", "plane", "capsule"]
    objs = []
    for i in range(args.objects):
        o = copy.deepcopy(scene["objects"][3])
        o.update(name=f"obj_{i}", shape=shapes[i % len(shapes)], translate=[i * 0.1, 0.5, -10.0])
        k = i % args.colours if args.colours else i
        o["color_linear"] = [(k % 97) / 97.0, (k // 97 % 89) / 89.0, 0.25]
        objs.append(o)
    big = dict(scene, objects=objs)
    state = _fake.reset()
    _fake.signatures()  # parse the stub file now: its one-off cost is not the builder's
    if args.regenerate:
        builder.build(big)
        state.calls.clear()
    t0 = time.perf_counter()
    builder.build(big)
    dt = time.perf_counter() - t0
    total = state.total_calls()
    print(f"objects={args.objects} distinct_colours={args.colours or args.objects} regenerate={args.regenerate} "
          f"cmds_calls={total} calls_per_object={total / args.objects:.2f} build_s={dt:.3f}")
    print("per command:", dict(sorted(state.calls.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
