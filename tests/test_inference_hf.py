"""Hugging Face checkpoints (inference/hf/): each registered model runs end to end on a checkpoint in the
hub's own format (tests/hf_support.py: the published config shrunk in width and depth, random weights,
save_pretrained), through the registry, the API, the whole `img2maya` CLI and the server.

Nothing here touches a network: the download tests use huggingface_hub's offline mode and a closed port
on the loopback address.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("huggingface_hub")

import hf_support as hs
from test_server_support import Wire, make_photo

from inference_server.cli import main
from inference_server.errors import UserError
from inference_server.inference import api, labelsets, registry
from inference_server.inference.hf import runners, specs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with every registered HF model as a tiny random-weight checkpoint."""
    folder = tmp_path_factory.mktemp("hf-models")
    for hub_id in hs.ALL:
        hs.write_model(folder, hub_id, seed=2)
    return folder


@pytest.fixture(autouse=True)
def _fresh_networks() -> Any:
    api.clear_cache()
    yield
    api.clear_cache()


def _rgb(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _copy(hf_models: Path, hub_id: str, dest: Path) -> Path:
    shutil.copytree(hf_models / hub_id, dest / hub_id)
    return dest


# ---- registry, listing, download --------------------------------------------------------------------


def test_every_required_model_is_registered_with_revision_licence_size_and_output() -> None:
    rows = {r["id"]: r for r in registry.list_models()}
    for hub_id in hs.ALL:
        r = rows[hub_id]
        assert r["backend"] == "transformers" and r["output"] in specs.OUTPUTS
        assert len(str(r["revision"])) == 40 and int(str(r["revision"]), 16) >= 0
        assert r["licence"] and r["notice"] and int(r["download_bytes"]) > 1_000_000
        assert [f["name"] for f in r["files"]] == list(specs.FILES)  # type: ignore[union-attr]
        assert all(str(r["revision"]) in u for f in r["files"] for u in f["urls"])  # type: ignore[union-attr]
    assert {rows[h]["output"] for h in hs.ALL} == set(specs.OUTPUTS)
    assert rows[hs.DA_SMALL]["depth_kind"] == "disparity" and rows[hs.DEPTH_PRO]["depth_kind"] == "metric"
    assert rows[hs.SEGFORMER]["labels"] == "ade20k150"


def test_models_list_shows_every_hf_model_with_its_licence(hf_models: Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    assert main(["models", "list", "--models-dir", str(hf_models)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for hub_id in hs.ALL:
        line = next(ln for ln in lines if ln.startswith(hub_id + " "))
        assert "installed" in line and f"[{specs.BY_ID[hub_id].notice}]" in line
    assert main(["models", "list", "-v", "--models-dir", str(hf_models)]) == 0
    out = capsys.readouterr().out
    assert f"revision {specs.BY_ID[hs.DEPTH_PRO].revision}" in out and "output: metric+focal" in out


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; from inference_server.cli import main; sys.exit(main({args!r}))"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          cwd=str(ROOT), timeout=120)


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}],
                         ids=["offline", "closed-port"])
def test_download_fails_with_one_line_saying_where_to_put_the_files(tmp_path: Path, env: dict[str, str]) -> None:
    t0 = time.monotonic()
    res = _cli(["models", "download", hs.DA_SMALL, "--models-dir", str(tmp_path), "-q"], **env)
    assert res.returncode == 2 and time.monotonic() - t0 < 60
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("img2maya: error: could not download " + hs.DA_SMALL)
    hf = specs.BY_ID[hs.DA_SMALL]
    assert str(tmp_path / hs.DA_SMALL) in lines[0] and hf.revision in lines[0] and "model.safetensors" in lines[0]
    assert "Traceback" not in res.stderr and not (tmp_path / hs.DA_SMALL / "model.safetensors").exists()


def test_installed_checkpoints_verify_and_download_is_then_a_no_op(hf_models: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "verify", *hs.ALL, "--models-dir", str(hf_models)]) == 0
    assert "FAIL" not in capsys.readouterr().out
    for hub_id in hs.ALL:  # every file fine: nothing is fetched (this would fail without network)
        assert registry.download(hub_id, hf_models, progress=False) == hf_models / hub_id


# ---- broken checkpoints: one line each ----------------------------------------------------------------


def test_a_truncated_safetensors_file_is_one_line_at_verify_and_at_load(hf_models: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    md = _copy(hf_models, hs.DA_SMALL, tmp_path)
    weights = md / hs.DA_SMALL / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated") as err:
        registry.verify(hs.DA_SMALL, md)
    assert str(weights) in str(err.value) and "\n" not in str(err.value)
    assert main(["models", "verify", hs.DA_SMALL, "--models-dir", str(md)]) == 1
    assert f"FAIL {hs.DA_SMALL}: {weights} truncated" in capsys.readouterr().out
    with pytest.raises(UserError, match="truncated"):
        api.estimate_depth(_rgb(), model=hs.DA_SMALL, models_dir=md)
    weights.write_bytes(b"\x00" * 7)
    with pytest.raises(UserError, match="8-byte header"):
        registry.verify(hs.DA_SMALL, md)
    weights.write_bytes(data + b"junk")
    with pytest.raises(UserError, match="trailing bytes"):
        registry.verify(hs.DA_SMALL, md)


def test_a_wrong_config_is_one_line(hf_models: Path, tmp_path: Path) -> None:
    md = _copy(hf_models, hs.DA_SMALL, tmp_path)
    cfg_path = md / hs.DA_SMALL / "config.json"
    cfg = json.loads(cfg_path.read_text())
    # another architecture's config
    cfg_path.write_text((hf_models / hs.SEGFORMER / "config.json").read_text())
    with pytest.raises(UserError, match="model_type 'segformer', not 'depth_anything'") as err:
        api.estimate_depth(_rgb(), model=hs.DA_SMALL, models_dir=md)
    assert "\n" not in str(err.value)
    api.clear_cache()
    # the right architecture, another width: the weights do not fit (never a silent re-initialisation)
    cfg_path.write_text(json.dumps({**cfg, "fusion_hidden_size": 24}))
    with pytest.raises(UserError, match="does not match") as err:
        api.estimate_depth(_rgb(), model=hs.DA_SMALL, models_dir=md)
    assert str(cfg_path) in str(err.value) and "\n" not in str(err.value)
    api.clear_cache()
    # more layers than the weights hold: missing tensors
    cfg["backbone_config"]["num_hidden_layers"] = 6
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="does not match"):
        api.estimate_depth(_rgb(), model=hs.DA_SMALL, models_dir=md)
    api.clear_cache()
    cfg_path.write_text("{not json")
    with pytest.raises(UserError, match="not JSON"):
        api.estimate_depth(_rgb(), model=hs.DA_SMALL, models_dir=md)


def test_a_missing_file_names_its_path_and_the_download(tmp_path: Path, hf_models: Path) -> None:
    md = _copy(hf_models, hs.SEGFORMER, tmp_path)
    (md / hs.SEGFORMER / "preprocessor_config.json").unlink()
    with pytest.raises(UserError) as err:
        api.segment(_rgb(), model=hs.SEGFORMER, models_dir=md)
    msg = str(err.value)
    assert str(md / hs.SEGFORMER / "preprocessor_config.json") in msg and f"models download {hs.SEGFORMER}" in msg


# ---- outputs: shapes, kinds, units --------------------------------------------------------------------


def test_depth_anything_gives_disparity_and_the_metric_fine_tune_metres(hf_models: Path) -> None:
    rgb = _rgb(90, 200)
    sky = np.zeros((90, 200), bool)
    sky[:10] = True
    d = api.estimate_depth(rgb, model=hs.DA_SMALL, models_dir=hf_models, sky_mask=sky)
    assert d.kind == "disparity" and d.depth.shape == (90, 200) and d.depth.dtype == np.float32
    assert np.isnan(d.depth[:10]).all() and d.extras["output"] == "disparity" and d.extras["sky_masked"]
    finite = d.depth[np.isfinite(d.depth)]
    assert finite.size and (finite > 0).all()
    net_w, net_h = d.extras["network_size"]
    assert 518 in (net_w, net_h) and net_w % 14 == 0 and net_h % 14 == 0  # the processor's 518 grid,
    assert net_w / net_h == pytest.approx(200 / 90, rel=0.1)  # with the photo's aspect ratio
    m = api.estimate_depth(rgb, model=hs.DA_METRIC, models_dir=hf_models, mask_sky=False)
    assert m.kind == "metric" and m.depth.shape == (90, 200)
    assert np.isfinite(m.depth).all() and (m.depth > 0).all() and (m.depth <= 80.0 + 1e-3).all()  # max_depth 80 m
    with pytest.raises(UserError, match="is a segmentation model"):
        api.estimate_depth(rgb, model=hs.SEGFORMER, models_dir=hf_models)


@pytest.mark.slow
def test_depth_pro_is_metric_with_its_own_field_of_view_or_the_given_focal(hf_models: Path) -> None:
    rgb = _rgb(120, 160)
    d = api.estimate_depth(rgb, model=hs.DEPTH_PRO, models_dir=hf_models, mask_sky=False)
    assert d.kind == "metric" and d.depth.shape == (120, 160)
    assert d.extras["network_fov_deg"] == pytest.approx(55.0, abs=1e-3) and d.extras["focal_from"] == "network"
    f_net = 0.5 * 160 / math.tan(math.radians(27.5))
    assert d.extras["network_focal_px"] == pytest.approx(f_net, rel=1e-5)
    given = api.estimate_depth(rgb, model=hs.DEPTH_PRO, models_dir=hf_models, mask_sky=False, focal_px=2 * f_net)
    assert given.extras["focal_from"] == "given" and given.extras["focal_px_used"] == pytest.approx(2 * f_net)
    # metric depth = focal / (width x canonical inverse depth): twice the focal, twice the depth (off the clamps)
    ok = np.isfinite(d.depth) & (d.depth > 1e-3) & (d.depth < 1e3)
    assert ok.mean() > 0.5
    np.testing.assert_allclose(given.depth[ok], 2 * d.depth[ok], rtol=1e-4)


def test_segformer_labels_are_ade20k150_ids_with_confidence(hf_models: Path) -> None:
    seg = api.segment(_rgb(100, 140), model=hs.SEGFORMER, models_dir=hf_models)
    assert seg.names == labelsets.names("ade20k150") and seg.model == hs.SEGFORMER
    assert seg.labels.shape == (100, 140) and seg.labels.dtype == np.int32
    assert 1 <= seg.labels.min() and seg.labels.max() <= 150  # network class k is ADE20K id k + 1 (0 = other)
    assert seg.confidence is not None and seg.confidence.shape == (100, 140)
    assert (seg.confidence >= 0).all() and (seg.confidence <= 1).all()
    crops = api.resegment(_rgb(64, 64), np.ones((64, 64), bool), model=hs.SEGFORMER, models_dir=hf_models)
    assert crops is not None and crops[0].shape == (64, 64)  # type: ignore[index]


def test_panoptic_gives_labels_and_instances_from_one_network_run(hf_models: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rgb = _rgb(120, 160)
    runs: list[int] = []
    forward = runners._Runner._forward

    def counted(self: Any, a: np.ndarray) -> Any:
        runs.append(1)
        return forward(self, a)

    monkeypatch.setattr(runners._Runner, "_forward", counted)
    seg = api.segment(rgb, model=hs.MASK2FORMER, models_dir=hf_models)
    inst = api.detect_instances(rgb, model=hs.MASK2FORMER, models_dir=hf_models)
    assert len(runs) == 1  # the instances come from the run that made the labels
    assert len(seg.names) == 134 and seg.names[:80] == labelsets.names("coco80") and seg.names[-1] == "unlabeled"
    assert seg.labels.min() >= 0  # pixels no segment claims are "unlabeled" (skipped by the shapes table)
    assert "sky-other" in seg.names and "wall-other" in seg.names and not any(n.endswith("-merged") for n in seg.names)
    assert seg.labels.shape == (120, 160) and seg.confidence is not None
    # the checkpoint's own post-processing: the segments its processor finds are the instances here
    net = api.load_model(hs.MASK2FORMER, hf_models)
    _, out = forward(net, rgb)
    ref = net.processor.post_process_panoptic_segmentation(out, threshold=runners.PANOPTIC_THRESHOLD,
                                                           label_ids_to_fuse=set(range(80, 133)),
                                                           target_sizes=[(120, 160)])[0]
    things = [s for s in ref["segments_info"] if s["label_id"] < 80]
    assert len(inst) == len(things) >= 1 and inst.names == ["car"] * len(things)
    assert inst.width == 160 and inst.height == 120 and inst.model == hs.MASK2FORMER
    car = seg.names.index("car")
    union = np.zeros((120, 160), bool)
    for i in range(len(inst)):
        rs, cs, m = inst.mask(i)
        assert m.any() and (seg.labels[rs, cs][m] == car).all()  # each mask lies on its class
        union[rs, cs] |= m
    assert union.sum() == pytest.approx((seg.labels == car).sum(), rel=0.02)
    with pytest.raises(UserError, match="is a segmentation model, not a instances model"):
        api.detect_instances(rgb, model=hs.SEGFORMER, models_dir=hf_models)


def test_panoptic_things_become_instances_and_stuff_stays_labels() -> None:
    """The conversion alone, on a panoptic map made by hand: boxes, classes, scores, masks on the grid."""
    net = object.__new__(runners.HFPanoptic)
    net.names = [*(n.removesuffix("-merged") for n in hs.COCO_PANOPTIC), runners.UNLABELED]
    net.thing = np.array([n in labelsets.names("coco80") for n in net.names])
    net.model_id = hs.MASK2FORMER
    ids = np.zeros((30, 40), np.int64)
    ids[:10] = 1  # sky (stuff)
    ids[15:25, 4:12] = 2  # a person
    ids[12:28, 20:38] = 3  # a car
    info = [{"id": 1, "label_id": net.names.index("sky-other"), "score": 0.99},
            {"id": 2, "label_id": 0, "score": 0.9}, {"id": 3, "label_id": 2, "score": 0.95}]
    inst = net._things(ids, info, 120, 160, 30, 40)  # photo 4x the grid
    assert inst.names == ["car", "person"]  # best score first; no sky instance
    np.testing.assert_allclose(inst.boxes, [[80, 48, 152, 112], [16, 60, 48, 100]])
    rs, cs, m = inst.mask(1)
    full = np.zeros((120, 160), bool)
    full[rs, cs] = m
    want = np.kron(ids == 2, np.ones((4, 4), bool))
    assert (full != want).sum() <= 4 and (full <= want).all()  # bilinear logits: only the 4 corners round off


# ---- the whole CLI -------------------------------------------------------------------------------------


def _scene(tmp_path: Path, hf_models: Path, *flags: str, name: str = "scene.json", w: int = 160,
           h: int = 120) -> dict[str, Any]:
    photo = make_photo(tmp_path / "photo.png", w=w, h=h)
    out = tmp_path / name
    rc = main(["scene", str(photo), "--models-dir", str(hf_models), "-o", str(out), "-q", *flags])
    assert rc == 0
    return json.loads(out.read_text())


def test_cli_scene_with_segformer_and_depth_anything(tmp_path: Path, hf_models: Path) -> None:
    scene = _scene(tmp_path, hf_models, "--seg", hs.SEGFORMER, "--depth-model", hs.DA_SMALL, "--instances", "none")
    src = scene["source"]
    assert src["models"] == {"segmentation": hs.SEGFORMER, "depth": hs.DA_SMALL}
    assert src["inputs"]["depth_kind"] == "disparity" and (src["width"], src["height"]) == (160, 120)
    assert scene["camera"]["focal_source"] in ("default", "vanishing-points")


def test_cli_scene_with_panoptic_labels_fuses_its_own_instances(tmp_path: Path, hf_models: Path) -> None:
    scene = _scene(tmp_path, hf_models, "--seg", hs.MASK2FORMER, "--depth", hs.DA_METRIC)
    assert scene["source"]["models"] == {"segmentation": hs.MASK2FORMER, "depth": hs.DA_METRIC,
                                         "instances": hs.MASK2FORMER}
    assert scene["source"]["inputs"]["depth_kind"] == "metric"
    labels = {o["label"] for o in scene["objects"]}
    assert "car" in labels
    none = _scene(tmp_path, hf_models, "--seg", hs.MASK2FORMER, "--depth", hs.DA_METRIC, "--instances", "none",
                  name="none.json")
    assert "instances" not in none["source"]["models"]


@pytest.mark.slow
def test_cli_scene_with_depth_pro_takes_its_focal_as_the_camera(tmp_path: Path, hf_models: Path) -> None:
    scene = _scene(tmp_path, hf_models, "--seg", hs.SEGFORMER, "--depth-model", hs.DEPTH_PRO)
    cam = scene["camera"]
    assert cam["focal_source"] == "depth-model"
    assert cam["focal_px"] == pytest.approx(0.5 * 160 / math.tan(math.radians(27.5)), rel=1e-3)
    assert scene["source"]["inputs"]["depth_kind"] == "metric"
    typed = _scene(tmp_path, hf_models, "--seg", hs.SEGFORMER, "--depth-model", hs.DEPTH_PRO, "--focal-px", "300",
                   name="typed.json")
    assert typed["camera"]["focal_source"] == "user" and typed["camera"]["focal_px"] == pytest.approx(300.0)


def test_cli_scene_with_a_broken_checkpoint_is_one_line(tmp_path: Path, hf_models: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    md = _copy(hf_models, hs.SEGFORMER, tmp_path / "m")
    weights = md / hs.SEGFORMER / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    photo = make_photo(tmp_path / "p.png")
    rc = main(["scene", str(photo), "--seg", hs.SEGFORMER, "--depth-model", "none", "--models-dir", str(md),
               "-o", str(tmp_path / "s.json"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "truncated" in err[0] and str(weights) in err[0]
    assert not (tmp_path / "s.json").exists()


# ---- nothing imported when not used ----------------------------------------------------------------


_PROBE = """
import json, sys
from inference_server.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "loaded": sorted(m for m in ("transformers", "torch", "huggingface_hub", "safetensors")
                                                    if m in sys.modules)}))
"""


def _probe(*args: str, **env: str) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=str(ROOT),
                         env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_scene_without_hf_models_imports_no_hf_package(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.png", 64, 48)
    labels = tmp_path / "l.png"
    from PIL import Image

    Image.fromarray(np.full((48, 64), 3, np.uint8)).save(labels)
    got = _probe("scene", str(photo), "--labels", str(labels), "--label-names", "ade20k150", "--depth-model", "none",
                 "-o", str(tmp_path / "s.json"), "-q")
    assert got == {"rc": 0, "loaded": []}
    assert _probe("models", "list", "--models-dir", str(tmp_path)) == {"rc": 0, "loaded": []}


def test_scene_with_the_default_models_imports_no_hf_package(tmp_path: Path, models_dir: Path,
                                                              samples_dir: Path) -> None:
    photo = samples_dir / "street_london_bus.jpg"
    got = _probe("scene", str(photo), "-o", str(tmp_path / "s.json"), "-q", IMG2MAYA_MODELS=str(models_dir))
    assert got == {"rc": 0, "loaded": []}


# ---- the server ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_server_runs_hf_models_with_progress_cache_and_cancel(tmp_path: Path, hf_models: Path) -> None:
    photo = str(make_photo(tmp_path / "p.png", 160, 120))
    proc = subprocess.Popen([sys.executable, "-m", "inference_server", "--models-dir", str(hf_models),
                             "--cache-dir", str(tmp_path / "cache")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    wire = Wire(proc)
    try:
        wire.send({"id": "h", "type": "hello"})
        hello, _ = wire.until("hello", "h")
        assert set(hs.ALL) <= set(hello["models"]["installed"])
        req = {"type": "analyze", "photo": photo, "seg_model": hs.MASK2FORMER, "depth_model": hs.DA_SMALL,
               "instances_model": hs.MASK2FORMER, "out_dir": str(tmp_path / "out")}
        wire.send({**req, "id": "a"})
        res, seen = wire.until("result", "a", timeout=180)
        stages = [m["stage"] for m in seen if m.get("type") == "progress"]
        assert "segmentation" in stages and "depth" in stages and stages[-1] == "done"
        scene = res["scene"]
        assert res["cached"] is False and scene["source"]["models"]["instances"] == hs.MASK2FORMER
        assert scene["source"]["inputs"]["depth_kind"] == "disparity"
        depth = np.load(res["files"]["depth"])
        assert depth.shape == (120, 160)
        wire.send({**req, "id": "b"})
        again, _ = wire.until("result", "b", timeout=60)
        assert again["cached"] is True and again["scene"]["objects"] == scene["objects"]
        # a long job (Depth Pro at 1536 x 1536) cancelled while its network runs
        wire.send({"id": "c", "type": "analyze", "photo": photo, "seg_model": hs.SEGFORMER,
                   "depth_model": hs.DEPTH_PRO, "instances_model": "none"})
        wire.until("progress", "c", timeout=60)
        wire.send({"id": "x", "type": "cancel", "target": "c"})
        cancelled, _ = wire.until("cancelled", "c", timeout=120)
        assert cancelled["id"] == "c"
        wire.send({"id": "d", "type": "analyze", "photo": photo, "seg_model": hs.SEGFORMER,
                   "depth_model": hs.DEPTH_PRO, "instances_model": "none"})
        pro, _ = wire.until("result", "d", timeout=240)
        assert pro["scene"]["camera"]["focal_source"] == "depth-model"
    finally:
        assert wire.close() == 0, getattr(wire, "stderr", "")
