"""What the server needs from the engine (`Pipeline`), and `RealPipeline`: inference_server.pipeline
behind it, imported lazily so that `hello` answers before any framework loads. Tests inject a fake
through `Server(pipeline=...)` or the hidden `--pipeline module:factory` flag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .checks import RequestError
from .wire import one_line

Progress = Callable[[str, float], None]
Resegment = Callable[..., Any]


class Pipeline(Protocol):
    """The engine as the server drives it. `prepare` + `assemble` are `analyse` in two steps: the
    prepared engine (everything but the recursion) is kept warm, so that a `regenerate` that changes
    only the recursion (the panel's slider) assembles its scene from it (the same scene)."""

    def load_photo(self, path: str) -> Any: ...
    def default_models(self) -> tuple[str, str | None]: ...
    def infer_options(self, photo: Any, depth_model: str | None, focal_px: float | None,
                      fov_deg: float | None) -> dict[str, Any]: ...
    def infer(self, photo: Any, seg_model: str, depth_model: str | None, progress: Progress,
              focal_px: float | None = None, fov_deg: float | None = None) -> tuple[Any, Any]: ...
    def resolve_instances(self, requested: str | None) -> str | None: ...
    def detect_instances(self, photo: Any, model: str, *, explicit: bool) -> tuple[Any, str | None]: ...
    def make_options(self, recursion: int, options: dict[str, Any]) -> Any: ...
    def analyse(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: float | None,
                fov_deg: float | None, progress: Progress, resegment: Resegment | None,
                instances: Any = None) -> dict[str, Any]: ...
    def prepare(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: float | None,
                fov_deg: float | None, progress: Progress, resegment: Resegment | None,
                instances: Any = None, sibling: Any = None) -> Any: ...
    def assemble(self, engine: Any, recursion: int, *, progress: Progress,
                 resegment: Resegment | None) -> dict[str, Any]: ...
    def resegmenter(self, seg_model: str) -> Resegment | None: ...
    def models(self) -> dict[str, Any]: ...


class RealPipeline:
    """The engine's own pipeline (inference_server.pipeline)."""

    def __init__(self, models_dir: str | None = None) -> None:
        self.models_dir = models_dir

    def load_photo(self, path: str) -> Any:
        from ..imageio import load_photo

        return load_photo(path)

    def default_models(self) -> tuple[str, str | None]:
        from ..inference import api

        return str(api.DEFAULT_SEG), (str(api.DEFAULT_DEPTH) if api.DEFAULT_DEPTH else None)

    def infer_options(self, photo: Any, depth_model: str | None, focal_px: float | None,
                      fov_deg: float | None) -> dict[str, Any]:
        """What the networks' output depends on besides photo and models: the analysed size (set by
        load_photo's downscale) and, with a depth model, the focal length it is given (a metric
        model's scale follows it)."""
        opts: dict[str, Any] = {"shape": list(photo.rgb.shape)}
        if depth_model is not None:
            from .. import pipeline

            opts["depth_focal_px"] = round(float(pipeline.intrinsics(photo, focal_px=focal_px,
                                                                     fov_deg=fov_deg).focal_px), 2)
        return opts

    def infer(self, photo: Any, seg_model: str, depth_model: str | None, progress: Progress,
              focal_px: float | None = None, fov_deg: float | None = None) -> tuple[Any, Any]:
        from .. import pipeline

        return pipeline.infer(photo, seg_model, depth_model, models_dir=self.models_dir, progress=progress,
                              focal_px=focal_px, fov_deg=fov_deg)

    def resolve_instances(self, requested: str | None) -> str | None:
        """The instance model an `instances_model` field means (None: none runs):
        pipeline.resolve_instances."""
        from .. import pipeline

        return pipeline.resolve_instances(requested, self.models_dir)

    def detect_instances(self, photo: Any, model: str, *, explicit: bool) -> tuple[Any, str | None]:
        """(instances, warning): an explicit model's problem is a UserError, the default's a warning."""
        from .. import pipeline

        return pipeline.detect_instances(photo, model, self.models_dir, explicit=explicit)

    def make_options(self, recursion: int, options: dict[str, Any]) -> Any:
        import dataclasses

        from ..analysis.engine import SceneOptions

        known = {f.name: f for f in dataclasses.fields(SceneOptions)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise RequestError("bad_request", f"unknown option(s): {', '.join(unknown)}; "
                                              f"known: {', '.join(sorted(known))}")
        if options.get("shapes_table") is not None:  # checked now: a bad table is one line, never internal
            from ..shapes_input import check_shapes_table

            check_shapes_table(options["shapes_table"])
        if "camera_height_m" in options:  # a height the user gives is the height, not a prior
            options = {"camera_height_from_objects": False, **options}
        try:
            return SceneOptions(**{**options, "recursion": recursion})
        except (TypeError, ValueError) as exc:
            raise RequestError("bad_request", f"bad options: {exc}") from None

    def analyse(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: float | None,
                fov_deg: float | None, progress: Progress, resegment: Resegment | None,
                instances: Any = None) -> dict[str, Any]:
        from .. import pipeline

        return pipeline.analyse(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                                progress=progress, resegment=resegment, instances=instances)

    def prepare(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: float | None,
                fov_deg: float | None, progress: Progress, resegment: Resegment | None,
                instances: Any = None, sibling: Any = None) -> Any:
        """pipeline.prepare: the engine with everything but the recursion done. `sibling`: a warm engine
        of the same photo, network output and camera with other options, whose stages the change does
        not touch are reused (SceneEngine.stages; the scene is the same)."""
        from .. import pipeline

        return pipeline.prepare(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                                progress=progress, resegment=resegment, instances=instances,
                                stages=None if sibling is None else sibling.stages)

    def assemble(self, engine: Any, recursion: int, *, progress: Progress,
                 resegment: Resegment | None) -> dict[str, Any]:
        """The scene of a prepared engine at `recursion` (identical to `analyse`'s)."""
        return engine.assemble(recursion, progress=progress, resegment=resegment)

    def resegmenter(self, seg_model: str) -> Resegment | None:
        """The re-segmentation network on crops (inference.api.resegment) with this model and folder."""
        from ..inference import api

        models_dir = self.models_dir

        def resegment(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("model", seg_model)
            kwargs.setdefault("models_dir", models_dir)
            return api.resegment(*args, **kwargs)

        return resegment

    def warm_up(self) -> None:
        """Load the default networks and run each once on a small grey image, so the first photo pays
        neither the load nor LiteRT's first-run set-up (XNNPACK packs its weights on the first invoke).
        Errors are left for the first analyze to report (e.g. model files not installed)."""
        import numpy as np

        from ..inference import api
        from ..inference.tflite_models import DeepLabV3

        grey = np.full((64, 64, 3), 128, np.uint8)
        seg, depth = self.default_models()
        for model in (seg, depth):
            if model is None or not api.available(model, self.models_dir):
                continue
            net = api.load_model(model, self.models_dir)
            if isinstance(net, DeepLabV3):
                net.predict(grey, flip=False)  # one pass (the mirrored one costs the same again)
            else:
                net.predict(grey)

    def models(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            from ..inference import api

            out["defaults"] = {"seg": api.DEFAULT_SEG, "depth": api.DEFAULT_DEPTH,
                               "instances": api.DEFAULT_INSTANCES}
        except Exception as exc:  # noqa: BLE001 - hello must answer even with a broken install
            out["error"] = one_line(exc)
            return out
        try:
            from ..inference import registry

            listed = _jsonable(registry.list_models(self.models_dir))
            out["installed"] = [m["id"] for m in listed if m.get("installed")]
            out["available"] = [m["id"] for m in listed]
            out["models"] = listed
        except Exception as exc:  # noqa: BLE001
            out["error"] = one_line(exc)
        return out


def _jsonable(value: Any) -> Any:
    """Best-effort conversion of registry objects (dataclasses, paths, tuples) to JSON data."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
