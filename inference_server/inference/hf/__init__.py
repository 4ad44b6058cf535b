"""Hugging Face ``transformers`` networks: depth and segmentation checkpoints by hub id and pinned revision.

* ``specs.py``: the table (hub id, revision, task, what the output means, licence, download size), as
  registry entries with backend ``"transformers"``; plain data, imported by the registry.
* ``files.py``: checks of a checkpoint folder that need no framework (a truncated ``model.safetensors``,
  a ``config.json`` of another architecture), and the download manifest.
* ``download.py``: ``img2maya models download ID`` through ``huggingface_hub`` (resumable, checked against
  the hub's own sha256).
* ``runners.py``: loading with ``transformers`` (its image processors do the preprocessing) and turning the
  outputs into the engine's types: disparity, metric depth (+ the network's focal length), semantic labels,
  panoptic labels + ``Instances``.

Only ``runners.py`` and ``download.py`` import the optional packages (extra ``.[hf]``), and only when an
HF model is used: ``img2maya scene`` with the default models never imports transformers or torch.
"""
