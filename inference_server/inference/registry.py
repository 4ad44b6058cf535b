"""Model registry: which networks exist, where their files live, how to check and fetch them.

Every model is a folder ``<models-dir>/<model-id>/`` holding its files under their original names (the
layout of ``../shared/models``, so ``IMG2MAYA_MODELS=../shared/models`` works). The models folder is
``--models-dir`` if given, else the environment variable ``IMG2MAYA_MODELS``, else ``~/.img2maya/models``.

Files are identified by sha256 where the original bytes are known; a missing or different file is a
``UserError`` that names the expected path and hash, so the user knows exactly what to put where.
``download`` fetches from the public URLs with urllib (atomic: ``.part`` then rename, hash checked); it
fails with one line, never a traceback or a hang, when there is no network.

This module imports no network framework: listing and verifying cost milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from inference_server.errors import UserError

ENV_VAR = "IMG2MAYA_MODELS"
DEFAULT_DIR = Path("~/.img2maya/models")
DOWNLOAD_TIMEOUT_S = 20.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    """One file of a model. ``sha256``/``size`` are None where the original bytes could not be checked.

    ``archive_member``: the file is a member (matched by base name) of the zip archive at ``urls``.
    ``optional``: not needed to run (e.g. a TF1 ``.meta`` graph).
    """

    name: str
    sha256: str | None
    size: int | None
    urls: tuple[str, ...]
    archive_member: bool = False
    optional: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A registered network: what it does, which runtime runs it, and its provenance."""

    id: str
    task: str  # "segmentation" | "depth" | "instances"
    backend: str  # "litert" | "torch" | "tensorflow" | "transformers" (hf/specs.py)
    files: tuple[ModelFile, ...]
    licence: str
    source: str
    labels: str | None = None  # label set (labelsets.py) for segmentation models
    depth_kind: str | None = None  # "relative" | "metric" for depth models
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    notice: str = ""  # shown on every `models list` line (e.g. a copyleft licence)
    revision: str | None = None  # pinned upstream commit (Hugging Face models)
    output: str = ""  # what the output means (hf/specs.py OUTPUTS), where the task alone does not say
    download_bytes: int | None = None  # approximate download size, where the files' sizes are not pinned

    @property
    def main_file(self) -> ModelFile:
        return self.files[0]


_GH = "https://raw.githubusercontent.com"

MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="deeplabv3-mnv2-ade20k150", task="segmentation", backend="litert", labels="ade20k150",
            description="DeepLabv3 + MobileNetV2, full ADE20K (150 classes + other), float logits",
            files=(ModelFile(
                "lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite",
                "9476784566f88bf0bdc3169f0012fb7d08857b325811d8c1aaf5ada1c0d4e4f9", 2_415_896,
                (f"{_GH}/ucalyptus/SIH-Stargazers/34dc5cb5d4ef1c0a3ae6c8c0f3093676fa26c91f/models/segmentation/"
                 "lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite",
                 f"{_GH}/ucalyptus/SIH-Stargazers/a70fbb24edab316f1ad673229efb13bbee02505d/models/segmentation/"
                 "lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite")),),
            licence="Apache-2.0 (upstream tensorflow/models DeepLab checkpoint; TF Hub lite-model); "
                    "ADE20K data terms apply",
            source="TF DeepLab model zoo deeplabv3_mnv2_ade20k_train_2018_12_03 as a TF Hub lite-model; "
                   "file found in github.com/ucalyptus/SIH-Stargazers (no licence file there)",
            notes=("provenance weaker than deeplabv3-mnv2-ade20k32: the bytes could not be checked against TF Hub",),
        ),
        ModelSpec(
            id="deeplabv3-mnv2-ade20k32", task="segmentation", backend="litert", labels="ade20k32",
            description="DeepLabv3 + MobileNetV2, ADE20K top-31 classes + other, uint8 QAT, in-graph ArgMax",
            files=(ModelFile(
                "deeplabv3_mnv2_ade20k_uint8.tflite",
                "2d58c681d81b5e181816b81cc815b82edf3daad905b4d7d35afade80aee93b5f", 2_348_952,
                (f"{_GH}/mlcommons/mobile_models/1f9963316b81a63fdef1040133ae64f6e8879c5b/v0_7/tflite/"
                 "deeplabv3_mnv2_ade20k_uint8.tflite",
                 f"{_GH}/mlcommons/mobile_open/b08a0c6b7cff219af4c58f875a58f25b61546235/vision/deeplab/"
                 "models_and_code/checkpoints/quantize_aware_training/freeze_qat.tflite")),),
            licence="Apache-2.0 (mlcommons/mobile_models); ADE20K data terms apply",
            source="MLPerf Mobile v0.7 segmentation reference model, github.com/mlcommons/mobile_models",
        ),
        ModelSpec(
            id="pydnet-mobile-v1", task="depth", backend="litert", depth_kind="relative",
            description="PyDNet (mobilePydnet v1, optimized_pydnet++), relative depth, larger = farther",
            files=(ModelFile(
                "optimized_pydnet++.tflite",
                "ba97991edb4a516096557aedf56e61bf4aa4c30e34d6a38f061ef449ecf16bc7", 2_020_168,
                (f"{_GH}/FilippoAleotti/mobilePydnet/0fc3030630cd76ef8f0a64da43818340ee3dfb65/Android/app/src/main/"
                 "assets/optimized_pydnet%2B%2B.tflite",)),),
            licence="Apache-2.0 (mobilePydnet); trained on Matterport3D (academic, non-commercial terms)",
            source="github.com/FilippoAleotti/mobilePydnet @ 0fc3030 (Poggi et al., IROS 2018)",
            notes=("indoor-trained: outdoor sky comes out near; the sky is masked with the segmentation",),
        ),
        ModelSpec(
            id="deeplabv2-cocostuff164k", task="segmentation", backend="torch", labels="cocostuff182",
            description="DeepLab v2 ResNet-101 MSC, COCO-Stuff 164k (182 classes), the prototype's network",
            files=(ModelFile(
                "cocostuff164k_iter100k.pth", None, None,
                ("https://github.com/kazuto1011/deeplab-pytorch/releases/download/v1.0/"
                 "deeplabv2_resnet101_msc-cocostuff164k-100000.pth",
                 "https://www.dropbox.com/s/vzs04q1wbohj8rd/cocostuff164k_iter100k.pth?dl=1")),),
            licence="code MIT (kazuto1011/deeplab-pytorch); weights: research artefact, COCO-Stuff "
                    "annotations CC BY 4.0, COCO images under Flickr terms",
            source="kazuto1011/deeplab-pytorch v1.0 release (either release, saved under this name)",
            notes=("sha256 unknown (not fetched here): only presence is checked", "needs torch (extra 'seed')"),
        ),
        ModelSpec(
            id="yolov8n-seg-coco-int8", task="instances", backend="litert", labels="coco80",
            description="YOLOv8n-seg (Ultralytics), COCO 80 thing classes, one mask per object, full int8",
            files=(ModelFile(
                "yolov8n-seg_int8.tflite",
                "ad5a89a78acae95be79a1f6dc7399b952f96a7c767af3fad86b9647fecb0658f", 3_779_152,
                (f"{_GH}/MyMLOpsProjects/CV_YOLOv8_Android_Project/41fe533ae57f6aa101f03a85f865fa8cc45dc5fe/app/"
                 "src/main/assets/yolov8n-seg_int8.tflite",)),),
            licence="AGPL-3.0 (Ultralytics YOLOv8 weights, stated in the file's metadata; a closed product "
                    "needs an Ultralytics Enterprise licence); COCO annotations CC BY 4.0",
            source="github.com/MyMLOpsProjects/CV_YOLOv8_Android_Project @ 41fe533 (repository code MIT), "
                   "Ultralytics 8.x TFLite int8 export of yolov8n-seg",
            notes=("optional: used when installed (img2maya scene --instances none to turn it off)",),
            notice="AGPL-3.0 weights",
        ),
        *(
            ModelSpec(
                id=f"monodepth-{ds}", task="depth", backend="tensorflow", depth_kind="relative",
                description=f"Monodepth VGG ({ds}), TF1 checkpoint; metric with a known focal length",
                files=tuple(
                    ModelFile(f"model_{ds}{ext}", None, None,
                              (f"http://visual.cs.ucl.ac.uk/pubs/monoDepth/models/model_{ds}.zip",),
                              archive_member=True, optional=ext == ".meta")
                    for ext in (".index", ".data-00000-of-00001", ".meta")),
                licence="UCLB ACP-A: non-commercial use only (code and trained models)",
                source="mrharicot/monodepth utils/get_model.sh (Godard et al., CVPR 2017)",
                notes=("sha256 unknown (not fetched here): only presence is checked",
                       "needs tensorflow (extra 'seed')"),
            )
            for ds in ("cityscapes", "kitti")
        ),
    )
}

# Hugging Face checkpoints by hub id and pinned revision (optional extra 'hf'; plain data here).
from inference_server.inference.hf import specs as _hf_specs  # noqa: E402

MODELS.update({spec.id: spec for spec in _hf_specs.registry_specs()})

DEFAULT_SEG = "deeplabv3-mnv2-ade20k150"
DEFAULT_DEPTH = "pydnet-mobile-v1"
#: The instance model: optional (AGPL-3.0 weights, never fetched by a plain `models download`), used by
#: default whenever its file is installed.
DEFAULT_INSTANCES = "yolov8n-seg-coco-int8"


def models_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The models folder: ``explicit`` (``--models-dir``) > ``$IMG2MAYA_MODELS`` > ``~/.img2maya/models``."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DIR.expanduser()


def get(model_id: str) -> ModelSpec:
    """The spec of ``model_id``; UserError listing the known ids otherwise."""
    try:
        return MODELS[model_id]
    except KeyError:
        raise UserError(f"unknown model {model_id!r}; known models: {', '.join(MODELS)}") from None


def model_folder(model_id: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """``<models-dir>/<model-id>``."""
    return models_dir(directory) / get(model_id).id


def file_path(model_id: str, directory: str | os.PathLike[str] | None = None, name: str | None = None) -> Path:
    """Path of one file of the model (its main file by default)."""
    spec = get(model_id)
    return model_folder(model_id, directory) / (name or spec.main_file.name)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read in 1 MiB chunks (bounded memory for the 224 MB seed checkpoint)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


# (path, size, mtime_ns) -> sha256, so a warm process does not re-hash files that did not change.
_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def _cached_sha(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        if key in _HASHES:
            return _HASHES[key]
    digest = sha256_file(path)
    with _HASH_LOCK:
        _HASHES[key] = digest
    return digest


def file_problem(path: Path, f: ModelFile) -> str | None:
    """Why ``path`` is not the expected file ("missing", "wrong size ...", "wrong sha256 ..."), None if fine."""
    if not path.is_file():
        return "missing"
    if f.sha256 is None and path.suffix == ".safetensors":  # no pinned hash: the file's own structure
        from inference_server.inference.hf.files import safetensors_problem

        return safetensors_problem(path)
    if f.size is not None and path.stat().st_size != f.size:
        return f"wrong size {path.stat().st_size} (expected {f.size})"
    if f.sha256 is not None:
        digest = _cached_sha(path)
        if digest != f.sha256:
            return f"wrong sha256 {digest[:12]}... (expected {f.sha256})"
    return None


def status(model_id: str, directory: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """file name -> "ok" or the problem, for every file of the model (optional ones only when present)."""
    spec = get(model_id)
    folder = model_folder(model_id, directory)
    out: dict[str, str] = {}
    for f in spec.files:
        problem = file_problem(folder / f.name, f)
        if problem == "missing" and f.optional:
            continue
        out[f.name] = problem or "ok"
    return out


def _expected(f: ModelFile) -> str:
    return f"the file with sha256 {f.sha256}" if f.sha256 else "the original file"


def verify(model_id: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Check every required file (presence, size, streamed sha256) and return the model folder.

    Raises UserError naming the first bad file's exact path and expected hash, and how to fix it.
    """
    spec = get(model_id)
    folder = model_folder(model_id, directory)
    for f in spec.files:
        path = folder / f.name
        problem = file_problem(path, f)
        if problem is None or (problem == "missing" and f.optional):
            continue
        raise UserError(f"model {model_id}: {path} is {problem}; put {_expected(f)} there "
                        f"(from {f.urls[0]}) or run `img2maya models download {model_id}`")
    return folder


def available(model_id: str, directory: str | os.PathLike[str] | None = None) -> bool:
    """True when the model's required files are present and pass their checks."""
    try:
        verify(model_id, directory)
    except UserError:
        return False
    return True


def list_models(directory: str | os.PathLike[str] | None = None) -> list[dict[str, object]]:
    """One plain dict per model (JSON-ready): id, task, backend, default, installed, folder, files, licence."""
    out: list[dict[str, object]] = []
    for spec in MODELS.values():
        st = status(spec.id, directory)
        out.append({
            "id": spec.id, "task": spec.task, "backend": spec.backend, "labels": spec.labels,
            "depth_kind": spec.depth_kind, "default": spec.id in (DEFAULT_SEG, DEFAULT_DEPTH),
            "installed": all(v == "ok" for v in st.values()), "folder": str(model_folder(spec.id, directory)),
            "files": [{"name": f.name, "sha256": f.sha256, "size": f.size, "urls": list(f.urls),
                       "status": st.get(f.name, "missing (optional)")} for f in spec.files],
            "licence": spec.licence, "source": spec.source, "description": spec.description,
            "notes": list(spec.notes), "notice": spec.notice, "revision": spec.revision, "output": spec.output,
            "download_bytes": spec.download_bytes,
        })
    return out


# ---- download -------------------------------------------------------------------------------------------

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


def _urlopen(url: str, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "img2maya-model-download"})
    return urllib.request.urlopen(req, timeout=timeout)


def _fetch(url: str, dest: Path, timeout: float, show_progress: bool) -> None:
    """Stream ``url`` into ``dest`` (the caller's temporary name), with a tqdm bar when asked."""
    with _urlopen(url, timeout) as resp, open(dest, "wb") as out:
        total = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
        total_n = int(total) if total and str(total).isdigit() else None
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=total_n, unit="B", unit_scale=True, desc=dest.name.removesuffix(".part"))
        try:
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


def download(model_id: str, directory: str | os.PathLike[str] | None = None, progress: bool = True, *,
             timeout: float = DOWNLOAD_TIMEOUT_S, force: bool = False) -> Path:
    """Fetch the model's missing or wrong files from its public URLs into ``<dir>/<model-id>/``.

    Each file is written as ``<name>.part`` and renamed only after its size and sha256 match, so an
    interrupted download never leaves a file that looks valid. Returns the model folder.
    """
    spec = get(model_id)
    folder = model_folder(model_id, directory)
    if spec.backend == "transformers":  # through huggingface_hub at the pinned revision (hf/download.py)
        if force or any(file_problem(folder / f.name, f) is not None for f in spec.files):
            from inference_server.inference.hf.download import download as hf_download

            hf_download(spec, folder, progress, force=force, timeout=timeout)
        return verify(model_id, directory)
    todo = [f for f in spec.files if force or file_problem(folder / f.name, f) is not None]
    if not todo:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the models folder {folder}: {exc.strerror or exc}") from None
    archives: dict[tuple[str, ...], list[ModelFile]] = {}
    for f in todo:
        if f.archive_member:
            archives.setdefault(f.urls, []).append(f)
        else:
            _download_file(spec, f, folder, progress, timeout)
    for urls, members in archives.items():
        _download_archive(spec, urls, members, folder, progress, timeout)
    return verify(model_id, directory)


def _check_fetched(path: Path, f: ModelFile, url: str) -> None:
    problem = file_problem(path, f)
    if problem is not None:
        raise UserError(f"downloaded {f.name} from {url} but it is {problem}")


def _fail(spec: ModelSpec, files: list[ModelFile], folder: Path, errors: list[str]) -> UserError:
    f = files[0]
    if f.archive_member:
        names = ", ".join(m.name for m in files if not m.optional)
        where = f"{names} (unzipped from {f.urls[0]}) into {folder}"
    else:
        where = f"{_expected(f)} at {folder / f.name} (source: {f.urls[0]})"
    return UserError(f"could not download {spec.id} ({'; '.join(errors)}); put {where} by hand")


def _download_file(spec: ModelSpec, f: ModelFile, folder: Path, progress: bool, timeout: float) -> None:
    part = folder / (f.name + ".part")
    errors: list[str] = []
    for url in f.urls:
        try:
            _fetch(url, part, timeout, progress)
            _check_fetched(part, f, url)
            os.replace(part, folder / f.name)
            return
        except UserError as exc:
            errors.append(str(exc))
        except (OSError, ValueError) as exc:  # URLError, timeouts, HTTP errors, bad URLs
            errors.append(f"{url.split('/')[2]}: {_reason(exc)}")
        finally:
            part.unlink(missing_ok=True)
    raise _fail(spec, [f], folder, errors)


def _download_archive(spec: ModelSpec, urls: tuple[str, ...], members: list[ModelFile], folder: Path,
                      progress: bool, timeout: float) -> None:
    errors: list[str] = []
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        archive = Path(tmp) / "archive.zip.part"
        for url in urls:
            try:
                _fetch(url, archive, timeout, progress)
                with zipfile.ZipFile(archive) as zf:
                    by_base = {Path(n).name: n for n in zf.namelist() if not n.endswith("/")}
                    for f in members:
                        if f.name not in by_base:
                            if f.optional:
                                continue
                            raise UserError(f"{url} has no member {f.name}")
                        part = Path(tmp) / (f.name + ".part")
                        with zf.open(by_base[f.name]) as src, open(part, "wb") as dst:
                            shutil.copyfileobj(src, dst, _CHUNK)
                        _check_fetched(part, f, url)
                for f in members:
                    part = Path(tmp) / (f.name + ".part")
                    if part.exists():
                        os.replace(part, folder / f.name)
                return
            except UserError as exc:
                errors.append(str(exc))
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                errors.append(f"{url.split('/')[2]}: {_reason(exc)}")
    raise _fail(spec, members, folder, errors)
