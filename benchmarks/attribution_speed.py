"""Time medcam's CAM methods against pytorch-grad-cam on the same model, layer and batch.

One run measures, on CPU and with the same random-weight model:

* ``inference``: one plain forward pass under ``torch.no_grad()``;
* ``floor``: the lower bound for gradient methods named in issue 5 -- one
  forward pass recording the graph plus ``torch.autograd.grad`` of the target
  logits with respect to the target layer (a backward pass that stops at that
  layer and computes no weight gradients);
* every method in ``--methods`` through ``medcam.explain`` and through the
  matching ``pytorch_grad_cam`` class (same layer module, predicted class).

It prints a table with the median time of each, the grad-cam / medcam ratio
(goal: >= 2 for gradient methods), and medcam's cost relative to inference
and to the floor. Example (the numbers in docs/attribution.md)::

    python benchmarks/attribution_speed.py --batch 8 --size 224 --repeats 5

The model is ``resnet50`` from the medcam registry when a plugin provides it,
else ``timm.create_model("resnet50", features_only=True)`` wrapped as a medcam
backbone inside this script. ``pretrained=False``: timing does not depend on
the weights, and nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Callable

import torch
from torch import nn

import medcam
from medcam.features import FeatureInfo, FeatureLevel
from medcam.registry import backbones

GRAD_CAM_CLASSES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "hirescam": "HiResCAM",
    "eigencam": "EigenCAM",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
    "random": "RandomCAM",
}
GRADIENT_METHODS = {"gradcam", "gradcam++", "xgradcam", "layercam", "hirescam"}


class _TimmFeatures(nn.Module):
    """A medcam backbone view of ``timm.create_model(name, features_only=True)``."""

    def __init__(self, name: str, in_chans: int = 3):
        super().__init__()
        import timm

        self.net = timm.create_model(name, features_only=True, pretrained=False, in_chans=in_chans)
        info = self.net.feature_info
        self.feature_info = FeatureInfo([FeatureLevel(c, s, f"net.{m}") for c, s, m in
                                         zip(info.channels(), info.reduction(), info.module_name())])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.net(x))


def build(model_name: str, num_classes: int) -> medcam.MedcamModel:
    """The benchmark model: the registry's backbone if present, else the in-script timm wrapper."""
    if model_name in backbones:
        backbone: Any = {"name": model_name, "pretrained": False}
        source = f"medcam backbone '{model_name}'"
    else:
        key = f"bench_timm_{model_name}"
        if key not in backbones:
            backbones.register(lambda in_chans=3: _TimmFeatures(model_name, in_chans), name=key)
        backbone = key
        source = f"timm.create_model('{model_name}', features_only=True) wrapped in this script"
    model = medcam.build_model({"backbone": backbone, "num_classes": num_classes})
    print(f"model: {source}; layer: {model.feature_info[model.feature_info.cam_level]}", file=sys.stderr)
    return model.eval()


class LogitsView(nn.Module):
    """Plain ``nn.Module`` view of a MedcamModel (returns logits), which pytorch-grad-cam can drive."""

    def __init__(self, model: medcam.MedcamModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


def interleaved_medians(jobs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall time of each job; the repeats run round-robin over the jobs (after one warm-up
    call each), so a change in machine load affects every contender alike."""
    for fn in jobs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, fn in jobs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _grad_cam_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("grad-cam")
    except PackageNotFoundError:
        return "?"


def floor_pass(model: medcam.MedcamModel, images: torch.Tensor) -> torch.Tensor:
    """Forward with graph + autograd.grad of the predicted logits w.r.t. the target level."""
    level = model.feature_info.cam_level
    out = model(images, return_features=True)
    scores = out.logits.gather(1, out.logits.argmax(1, keepdim=True)).sum()
    (grad,) = torch.autograd.grad(scores, out.features[level])
    return grad


def run_grad_cam(cls: type, view: nn.Module, layer: nn.Module, images: torch.Tensor) -> Any:
    """pytorch-grad-cam as its README recommends: a context manager per use (its hooks are
    removed on exit, so instances never stack hooks on the shared layer)."""
    with cls(model=view, target_layers=[layer]) as cam:
        if cls.__name__ == "ScoreCAM":
            cam.batch_size = 32
        return cam(input_tensor=images, targets=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="gradcam,gradcam++,xgradcam,layercam,hirescam,eigencam",
                        help="comma-separated; scorecam/ablationcam run B*C forward passes (slow)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    import pytorch_grad_cam

    model = build(args.model, args.classes)
    images = torch.rand(args.batch, 3, args.size, args.size)
    layer_name = "backbone." + model.feature_info[model.feature_info.cam_level].module
    view = LogitsView(model).eval()
    layer_module = dict(model.named_modules())[layer_name]

    def inference() -> None:
        with torch.no_grad():
            model(images)

    jobs: dict[str, Callable[[], Any]] = {"inference": inference, "floor": lambda: floor_pass(model, images)}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in methods:
        params = {"progress": False} if method in ("scorecam", "ablationcam") else {}
        built = medcam.build_attribution({"name": method, **params})
        jobs[f"medcam:{method}"] = lambda built=built: built(model, images)
        cls_name = GRAD_CAM_CLASSES.get(method)
        if cls_name is not None:
            jobs[f"grad-cam:{method}"] = lambda cls=getattr(pytorch_grad_cam, cls_name): run_grad_cam(
                cls, view, layer_module, images)
    try:
        medians = interleaved_medians(jobs, args.repeats)
    finally:
        model.zero_grad(set_to_none=True)  # pytorch-grad-cam's backward leaves weight gradients behind
    t_inference, t_floor = medians["inference"], medians["floor"]
    rows: list[dict[str, Any]] = [{"method": "inference (no_grad forward)", "medcam_s": t_inference},
                                  {"method": "floor (forward + grad to layer)", "medcam_s": t_floor}]
    for method in methods:
        t_medcam = medians[f"medcam:{method}"]
        row: dict[str, Any] = {"method": method, "medcam_s": t_medcam}
        if f"grad-cam:{method}" in medians:
            t_ref = medians[f"grad-cam:{method}"]
            row.update(grad_cam_s=t_ref, speedup=t_ref / t_medcam)
        row.update(over_inference=t_medcam / t_inference, over_floor=t_medcam / t_floor)
        rows.append(row)

    print(f"# medcam vs pytorch-grad-cam {_grad_cam_version()} | model {args.model} | layer {layer_name} | "
          f"batch {args.batch}x3x{args.size}x{args.size} | CPU threads {args.threads} | "
          f"median of {args.repeats} | torch {torch.__version__}")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'method':34s} {'medcam s':>9s} {'grad-cam s':>10s} {'speedup':>8s} {'/infer':>7s} {'/floor':>7s}"
    print(header)
    print("-" * len(header))
    for row in rows:
        def fmt(key: str, spec: str) -> str:
            return format(row[key], spec) if key in row else "-"
        print(f"{row['method']:34s} {fmt('medcam_s', '9.3f')} {fmt('grad_cam_s', '10.3f'):>10s} "
              f"{fmt('speedup', '7.2f') + ('x' if 'speedup' in row else ''):>8s} "
              f"{fmt('over_inference', '6.2f'):>7s} {fmt('over_floor', '6.2f'):>7s}")
    gradient = [row["speedup"] for row in rows if row["method"] in GRADIENT_METHODS and "speedup" in row]
    if gradient:
        verdict = "met" if min(gradient) >= 2.0 else "NOT met"
        print(f"gradient methods: grad-cam / medcam = {min(gradient):.2f}x .. {max(gradient):.2f}x "
              f"(goal >= 2x: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
