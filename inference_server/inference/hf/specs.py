"""The Hugging Face models the engine knows: hub id, pinned revision, what they compute, licence, size.

Each entry becomes a registry ``ModelSpec`` with backend ``"transformers"`` and id = the hub id, so
``--seg nvidia/segformer-b0-finetuned-ade-512-512`` or ``img2maya models download apple/DepthPro-hf``
name exactly what the hub names. Its folder is ``<models-dir>/<hub id>/`` (``org/name``) holding the
repository's own files at that revision: ``config.json``, ``preprocessor_config.json`` and
``model.safetensors`` (what ``save_pretrained`` writes and the hub serves).

What each output means (``output``):

* ``disparity``: affine-invariant inverse depth (larger = nearer, unknown scale and shift): the engine's
  disparity path calibrates it on the ground plane.
* ``metric``: z-depth in metres.
* ``metric+focal``: z-depth in metres and the network's own horizontal field of view, which becomes a
  camera source (``focal_source`` "depth-model") when neither the user nor EXIF gives the focal length.
* ``semantic``: one class per pixel.
* ``panoptic``: one class per pixel plus one mask per "thing" (``types.Instances``), which the instance
  fusion turns into one object each.

Revisions are commits of the hub repositories that hold all three files (seen in the hub's public
file listings; the weights could not be fetched on the build machine, so no file hash is pinned here:
``models download`` checks each file against the sha256 the hub publishes for that revision).
Download sizes are the hub's listed sizes of ``model.safetensors``.

Plain data: importing this module imports no framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HUB = "https://huggingface.co"
FILES = ("config.json", "preprocessor_config.json", "model.safetensors")
OUTPUTS = ("disparity", "metric", "metric+focal", "semantic", "panoptic")


@dataclass(frozen=True)
class HFModel:
    """One hub checkpoint and how the engine reads it."""

    id: str  # hub repository id, "org/name"
    revision: str  # 40-hex commit
    architecture: str  # transformers model class, e.g. "DepthAnythingForDepthEstimation"
    model_type: str  # config.json "model_type" it must have
    task: str  # "depth" | "segmentation"
    output: str  # one of OUTPUTS
    licence: str
    notice: str  # short licence tag shown on every `models list` line
    download_mb: float  # size of model.safetensors as the hub lists it
    description: str
    labels: str | None = None  # label set: "ade20k150" (labelsets.py) or "coco-panoptic133" (config id2label)
    label_offset: int = 0  # network class k is label set id k + label_offset (ADE20K: 0 = "other")
    paper: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def depth_kind(self) -> str | None:
        """The DepthMap kind of a depth model's output."""
        if self.task != "depth":
            return None
        return "disparity" if self.output == "disparity" else "metric"

    def url(self, name: str) -> str:
        return f"{HUB}/{self.id}/resolve/{self.revision}/{name}"

    @property
    def tree_url(self) -> str:
        return f"{HUB}/{self.id}/tree/{self.revision}"

    def registry_spec(self) -> Any:
        """This model as a registry ``ModelSpec`` (imported here: the registry imports this module)."""
        from inference_server.inference.registry import ModelFile, ModelSpec

        return ModelSpec(
            id=self.id, task=self.task, backend="transformers",
            files=tuple(ModelFile(name, None, None, (self.url(name),)) for name in FILES),
            licence=self.licence, source=f"{self.tree_url} ({self.paper})" if self.paper else self.tree_url,
            labels=self.labels, depth_kind=self.depth_kind, description=self.description,
            notes=(*self.notes, "needs the extra 'hf' (pip install 'img2maya[hf]': transformers, torch)"),
            notice=self.notice, revision=self.revision, output=self.output,
            download_bytes=int(self.download_mb * 1e6),
        )


HF_MODELS: tuple[HFModel, ...] = (
    HFModel(
        id="depth-anything/Depth-Anything-V2-Small-hf", revision="5426e4f0f36572d16453bbda7a8389317b1bef99",
        architecture="DepthAnythingForDepthEstimation", model_type="depth_anything", task="depth",
        output="disparity", download_mb=99.2, paper="Yang et al., Depth Anything V2, arXiv:2406.09414",
        description="Depth Anything V2 Small (DINOv2 ViT-S + DPT head, 24.8 M parameters): affine-invariant "
                    "disparity, larger = nearer",
        licence="Apache-2.0 (the Small model only; Base/Large/Giant are CC BY-NC 4.0)", notice="Apache-2.0",
    ),
    HFModel(
        id="depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf",
        revision="41237b3b224cac8a45a10e01a5799285124e8305",
        architecture="DepthAnythingForDepthEstimation", model_type="depth_anything", task="depth",
        output="metric", download_mb=99.2, paper="Yang et al., Depth Anything V2, arXiv:2406.09414",
        description="Depth Anything V2 Small fine-tuned on Virtual KITTI 2: metric z-depth in metres "
                    "(0..80 m, outdoor scenes)",
        licence="the card names no licence; the Depth Anything V2 Small weights it starts from are Apache-2.0, "
                "its fine-tuning data (Virtual KITTI 2) is CC BY-NC-SA 3.0: check before commercial use",
        notice="licence unstated (VKITTI2 data: non-commercial)",
        notes=("outdoor fine-tune: indoor photos come out too far; an indoor twin exists "
               "(Depth-Anything-V2-Metric-Indoor-Small-hf, 0..20 m)",),
    ),
    HFModel(
        id="apple/DepthPro-hf", revision="3a8b51229207764e5215b31f47fac0d1a049d563",
        architecture="DepthProForDepthEstimation", model_type="depth_pro", task="depth",
        output="metric+focal", download_mb=1900.0,
        paper="Bochkovskii et al., Depth Pro, arXiv:2410.02073",
        description="Depth Pro (three DINOv2 ViT-L/16 encoders, 1536 x 1536 input): metric z-depth in metres "
                    "and the field of view",
        licence="Apple Machine Learning Research Model licence (apple-amlr on the current card; apple-ascl at "
                "the pinned revision): research use, not commercial", notice="apple-amlr: research only",
        notes=("float16 weights (1.9 GB); on a CPU it takes tens of seconds per photo (docs/MODELS.md)",
               "its image processor needs torchvision; without it the same settings run through "
               "transformers' PIL-backed DPT processor (resize before normalise: a small numeric difference)"),
    ),
    HFModel(
        id="nvidia/segformer-b0-finetuned-ade-512-512", revision="489d5cd81a0b59fab9b7ea758d3548ebe99677da",
        architecture="SegformerForSemanticSegmentation", model_type="segformer", task="segmentation",
        output="semantic", labels="ade20k150", label_offset=1, download_mb=15.0,
        paper="Xie et al., SegFormer, arXiv:2105.15203",
        description="SegFormer-B0 (MiT-b0, 3.7 M parameters), ADE20K 150 classes (+ other), softmax confidence",
        licence="NVIDIA Source Code License for SegFormer: non-commercial (research) use; ADE20K terms apply",
        notice="NVIDIA SegFormer licence: non-commercial",
    ),
    HFModel(
        id="facebook/mask2former-swin-tiny-coco-panoptic", revision="c759e8b05876a7fbf1dee792aeb83c7c7664dccb",
        architecture="Mask2FormerForUniversalSegmentation", model_type="mask2former", task="segmentation",
        output="panoptic", labels="coco-panoptic133", download_mb=190.0,
        paper="Cheng et al., Mask2Former, arXiv:2112.01527",
        description="Mask2Former Swin-T, COCO panoptic: 133 classes (80 things, 53 stuff) and one mask per "
                    "thing, fused with the labels as instances",
        licence="card: other; the upstream Mask2Former code and model zoo are MIT (facebookresearch/Mask2Former); "
                "COCO annotations CC BY 4.0", notice="MIT (upstream)",
        notes=("as --seg it brings its own instances (--instances auto uses them; the server: set "
               "instances_model to the same id)",),
    ),
)

BY_ID: dict[str, HFModel] = {m.id: m for m in HF_MODELS}


def get(model_id: str) -> HFModel | None:
    """The HF entry of ``model_id``, None for a model of another backend."""
    return BY_ID.get(model_id)


def is_panoptic(model_id: str | None) -> bool:
    """True for a registered panoptic model (its segmentation also gives instances)."""
    m = BY_ID.get(model_id or "")
    return m is not None and m.output == "panoptic"


def estimates_focal(model_id: str | None) -> bool:
    """True for a depth model that estimates the field of view itself (Depth Pro)."""
    m = BY_ID.get(model_id or "")
    return m is not None and m.output == "metric+focal"


def registry_specs() -> list[Any]:
    """Every HF model as a registry ``ModelSpec``."""
    return [m.registry_spec() for m in HF_MODELS]
