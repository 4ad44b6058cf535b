"""Checkpoints in the Hugging Face hub's own format, written here with random weights.

``PUBLISHED`` holds, per registered hub id, the architecture fields of the repository's published
``config.json`` and its ``preprocessor_config.json`` (the values the hub serves at the pinned revision;
class names come from the label sets). ``SHRINK`` makes them small in width and depth only: the
structure, the image processor, the input size and the outputs' meaning stay those of the real model.
``write_model`` builds the model class from the config with random weights and saves it with
``save_pretrained`` (config.json + model.safetensors) beside the preprocessor config, in
``<models-dir>/<hub id>/``: exactly the folder ``img2maya models download`` fills.

benchmarks/bench_hf.py builds the same configs at full size (``full=True``) to time the real compute.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from inference_server.inference import labelsets

DA_SMALL = "depth-anything/Depth-Anything-V2-Small-hf"
DA_METRIC = "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf"
DEPTH_PRO = "apple/DepthPro-hf"
SEGFORMER = "nvidia/segformer-b0-finetuned-ade-512-512"
MASK2FORMER = "facebook/mask2former-swin-tiny-coco-panoptic"
ALL = (DA_SMALL, DA_METRIC, DEPTH_PRO, SEGFORMER, MASK2FORMER)

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

#: COCO panoptic's 53 stuff classes after the 80 things, as the checkpoint's id2label names them.
COCO_PANOPTIC_STUFF = (
    "banner", "blanket", "bridge", "cardboard", "counter", "curtain", "door-stuff", "floor-wood", "flower",
    "fruit", "gravel", "house", "light", "mirror-stuff", "net", "pillow", "platform", "playingfield",
    "railroad", "river", "road", "roof", "sand", "sea", "shelf", "snow", "stairs", "tent", "towel",
    "wall-brick", "wall-stone", "wall-tile", "wall-wood", "water-other", "window-blind", "window-other",
    "tree-merged", "fence-merged", "ceiling-merged", "sky-other-merged", "cabinet-merged", "table-merged",
    "floor-other-merged", "pavement-merged", "mountain-merged", "grass-merged", "dirt-merged", "paper-merged",
    "food-other-merged", "building-other-merged", "rock-merged", "wall-other-merged", "rug-merged",
)
COCO_PANOPTIC = (*labelsets.names("coco80"), *COCO_PANOPTIC_STUFF)
ADE150 = tuple(labelsets.names("ade20k150")[1:])


def _dinov2(hidden: int, layers: int, heads: int, image_size: int, patch: int, **extra: Any) -> dict[str, Any]:
    return {"model_type": "dinov2", "architectures": ["Dinov2Model"], "hidden_size": hidden,
            "num_hidden_layers": layers, "num_attention_heads": heads, "image_size": image_size,
            "patch_size": patch, **extra}


_DA_BACKBONE = _dinov2(384, 12, 6, 518, 14, out_features=["stage3", "stage6", "stage9", "stage12"],
                       out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
_DA = {"architectures": ["DepthAnythingForDepthEstimation"], "model_type": "depth_anything",
       "backbone_config": _DA_BACKBONE, "fusion_hidden_size": 64, "head_hidden_size": 32, "head_in_index": -1,
       "neck_hidden_sizes": [48, 96, 192, 384], "patch_size": 14, "reassemble_factors": [4, 2, 1, 0.5],
       "reassemble_hidden_size": 384, "use_pretrained_backbone": False}
_DA_PRE = {"do_normalize": True, "do_pad": False, "do_rescale": True, "do_resize": True, "ensure_multiple_of": 14,
           "image_mean": IMAGENET_MEAN, "image_processor_type": "DPTImageProcessor", "image_std": IMAGENET_STD,
           "keep_aspect_ratio": True, "resample": 3, "rescale_factor": 1 / 255,
           "size": {"height": 518, "width": 518}}
_DP_ENCODER = _dinov2(1024, 24, 16, 384, 16, out_features=["stage24"], out_indices=[24], use_mask_token=False)

PUBLISHED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    DA_SMALL: (_DA, _DA_PRE),
    DA_METRIC: ({**_DA, "depth_estimation_type": "metric", "max_depth": 80}, _DA_PRE),
    DEPTH_PRO: ({"architectures": ["DepthProForDepthEstimation"], "model_type": "depth_pro",
                 "image_model_config": _DP_ENCODER, "patch_model_config": _DP_ENCODER, "fov_model_config": _DP_ENCODER,
                 "fusion_hidden_size": 256, "intermediate_feature_dims": [256, 256], "intermediate_hook_ids": [11, 5],
                 "merge_padding_value": 3, "num_fov_head_layers": 2, "patch_size": 384,
                 "scaled_images_feature_dims": [1024, 1024, 512], "scaled_images_overlap_ratios": [0.0, 0.5, 0.25],
                 "scaled_images_ratios": [0.25, 0.5, 1], "use_batch_norm_in_fusion_residual": False,
                 "use_bias_in_fusion_residual": True, "use_fov_model": True, "torch_dtype": "float16"},
                {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
                 "image_processor_type": "DepthProImageProcessorFast", "image_std": [0.5, 0.5, 0.5], "resample": 2,
                 "rescale_factor": 1 / 255, "size": {"height": 1536, "width": 1536}}),
    SEGFORMER: ({"architectures": ["SegformerForSemanticSegmentation"], "model_type": "segformer",
                 "attention_probs_dropout_prob": 0.0, "classifier_dropout_prob": 0.1, "decoder_hidden_size": 256,
                 "depths": [2, 2, 2, 2], "downsampling_rates": [1, 4, 8, 16], "drop_path_rate": 0.1,
                 "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "hidden_sizes": [32, 64, 160, 256],
                 "id2label": dict(enumerate(ADE150)), "image_size": 224, "initializer_range": 0.02,
                 "layer_norm_eps": 1e-06, "mlp_ratios": [4, 4, 4, 4], "num_attention_heads": [1, 2, 5, 8],
                 "num_channels": 3, "num_encoder_blocks": 4, "patch_sizes": [7, 3, 3, 3], "reshape_last_stage": True,
                 "semantic_loss_ignore_index": 255, "sr_ratios": [8, 4, 2, 1], "strides": [4, 2, 2, 2]},
                {"do_normalize": True, "do_resize": True, "feature_extractor_type": "SegformerFeatureExtractor",
                 "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "reduce_labels": True, "resample": 2,
                 "size": 512}),
    MASK2FORMER: ({"architectures": ["Mask2FormerForUniversalSegmentation"], "model_type": "mask2former",
                   "backbone_config": {"model_type": "swin", "depths": [2, 2, 6, 2], "embed_dim": 96,
                                       "num_heads": [3, 6, 12, 24], "window_size": 7, "image_size": 224,
                                       "drop_path_rate": 0.3, "out_features": ["stage1", "stage2", "stage3", "stage4"]},
                   "hidden_dim": 256, "feature_size": 256, "mask_feature_size": 256, "encoder_layers": 6,
                   "decoder_layers": 10, "num_queries": 100, "dim_feedforward": 2048, "encoder_feedforward_dim": 1024,
                   "num_attention_heads": 8, "common_stride": 4, "feature_strides": [4, 8, 16, 32],
                   "id2label": dict(enumerate(COCO_PANOPTIC))},
                  {"_max_size": 1333, "do_normalize": True, "do_rescale": True, "do_resize": True, "ignore_index": 255,
                   "image_mean": IMAGENET_MEAN, "image_processor_type": "Mask2FormerImageProcessor",
                   "image_std": IMAGENET_STD, "num_labels": 133, "reduce_labels": False, "resample": 2,
                   "rescale_factor": 1 / 255, "size": {"height": 384, "width": 384}, "size_divisor": 32}),
}

_DP_TINY = {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2, "out_features": ["stage4"],
            "out_indices": [4]}
SHRINK: dict[str, dict[str, Any]] = {
    DA_SMALL: {"backbone_config": {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2,
                                   "out_features": ["stage1", "stage2", "stage3", "stage4"], "out_indices": [1, 2, 3, 4]},
               "fusion_hidden_size": 16, "head_hidden_size": 8, "neck_hidden_sizes": [8, 16, 24, 32],
               "reassemble_hidden_size": 32},
    DEPTH_PRO: {"image_model_config": _DP_TINY, "patch_model_config": _DP_TINY, "fov_model_config": _DP_TINY,
                "fusion_hidden_size": 16, "intermediate_feature_dims": [8, 8], "intermediate_hook_ids": [3, 1],
                "scaled_images_feature_dims": [16, 16, 8]},
    SEGFORMER: {"hidden_sizes": [8, 16, 24, 32], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 1, 1],
                "decoder_hidden_size": 32},
    MASK2FORMER: {"backbone_config": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2]},
                  "hidden_dim": 32, "feature_size": 32, "mask_feature_size": 32, "encoder_layers": 1,
                  "decoder_layers": 2, "num_queries": 2, "dim_feedforward": 64, "encoder_feedforward_dim": 64,
                  "num_attention_heads": 2},
}
SHRINK[DA_METRIC] = SHRINK[DA_SMALL]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def config_dict(hub_id: str, *, full: bool = False) -> dict[str, Any]:
    """The published config.json fields of ``hub_id`` (``full``) or their shrunk copy."""
    published = PUBLISHED[hub_id][0]
    return copy.deepcopy(published) if full else _merge(published, SHRINK[hub_id])


def build_model(hub_id: str, *, full: bool = False, seed: int = 0) -> Any:
    """The transformers model of ``hub_id`` with random weights (float32)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = config_dict(hub_id, full=full)
    cfg.pop("torch_dtype", None)
    model_type = cfg.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **cfg)
    cls = getattr(transformers, cfg["architectures"][0])
    model = cls(config).eval()
    with torch.no_grad():
        if hub_id == DEPTH_PRO:  # a known field of view (55 degrees) instead of a random one
            last = model.fov_model.head.layers[-1]
            last.weight.zero_()
            last.bias.fill_(55.0)
        if hub_id == MASK2FORMER:  # every query a confident "car": the post-processing keeps things
            model.class_predictor.weight.zero_()
            model.class_predictor.bias.fill_(-10.0)
            model.class_predictor.bias[COCO_PANOPTIC.index("car")] = 10.0
    return model


def write_model(models_dir: Path, hub_id: str, *, seed: int = 0) -> Path:
    """``<models_dir>/<hub id>/`` with config.json, model.safetensors, preprocessor_config.json."""
    folder = Path(models_dir) / hub_id
    folder.mkdir(parents=True, exist_ok=True)
    build_model(hub_id, seed=seed).save_pretrained(str(folder))
    (folder / "preprocessor_config.json").write_text(json.dumps(PUBLISHED[hub_id][1], indent=2), encoding="utf-8")
    return folder
