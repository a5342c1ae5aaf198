"""Time medcam's attribution methods against the peers (pytorch-grad-cam, torchcam, Captum) on the same
model, layer and batch.

One run measures, on CPU and with the same random-weight model:

* ``inference``: one plain forward pass under ``torch.no_grad()``;
* ``floor``: the lower bound for gradient methods named in issue 5 -- one
  forward pass recording the graph plus ``torch.autograd.grad`` of the target
  logits with respect to the target layer (a backward pass that stops at that
  layer and computes no weight gradients);
* every method in ``--methods`` through medcam and through the peer that has it
  (:data:`PEERS`: the ``pytorch_grad_cam`` class, torchcam's extractor or Captum's
  attribution; same layer module, predicted class, same method parameters).

It prints a table with the median time of each, the peer / medcam ratio
(goals of issue 19 in :data:`GOALS`, printed on the last line), and medcam's cost
relative to inference and to the floor. Examples (the numbers in docs/attribution.md)::

    python benchmarks/attribution_speed.py --batch 8 --size 224 --repeats 5
    python benchmarks/attribution_speed.py --model resnet18 --batch 2 --methods new --light

``--methods new`` times every method added after the first release (the
pytorch-grad-cam 1.5.7 methods, torchcam's and Captum's); ``--light`` gives the
costly ones the same smaller settings on both sides (:data:`LIGHT`).

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
#: issue 19: minimum peer / medcam ratio against pytorch-grad-cam, per group of methods
GOALS: dict[str, float] = {"gradient methods": 3.5, "scorecam": 2.0, "ablationcam": 2.0}
#: Methods added with the faithfulness work, and the peer that implements each (``--methods new``).
NEW_METHODS = ["gradcamelementwise", "eigengradcam", "segeigencam", "shapleycam", "finercam", "kpcacam", "fem",
               "fullgrad", "sobelcam", "guidedbackprop", "guidedgradcam", "refinecam", "sess", "smoothgradcam++",
               "sscam", "iscam", "integrated_gradients", "input_x_gradient", "occlusion"]
#: Smaller settings of the costly methods (``--light``), given to medcam and to the peer alike.
LIGHT: dict[str, dict[str, Any]] = {
    "sess": {"num_scales": 2}, "sscam": {"samples": 2}, "iscam": {"samples": 2},
    "integrated_gradients": {"steps": 16}, "occlusion": {"window": 32, "stride": 32},
    "scorecam": {}, "ablationcam": {},
}
QUIET = {"scorecam", "ablationcam", "sess", "sscam", "iscam", "integrated_gradients", "occlusion"}


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


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
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


def _grad_cam_extra(name: str) -> Callable[..., Any]:
    """pytorch-grad-cam classes whose constructor or call differ from the common one."""
    import pytorch_grad_cam

    def finer(view: nn.Module, layer: nn.Module, images: torch.Tensor, params: dict[str, Any]) -> Any:
        with pytorch_grad_cam.FinerCAM(view, [layer]) as cam:
            return cam(images)

    def refine(view: nn.Module, layer: nn.Module, images: torch.Tensor, params: dict[str, Any]) -> Any:
        modules = dict(view.model.named_modules())
        levels = [modules["backbone." + lvl.module] for lvl in view.model.feature_info]   # every level, as medcam
        cam = pytorch_grad_cam.RefineCAM(view, levels)
        try:
            return cam(images, None)
        finally:  # RefineCAM has no context manager: release its per-layer hooks by hand
            for base in cam.base_cam_per_layer:
                base.activations_and_grads.release()

    def sess(view: nn.Module, layer: nn.Module, images: torch.Tensor, params: dict[str, Any]) -> Any:
        with pytorch_grad_cam.SESS(view, [layer], num_scales=params.get("num_scales", 12)) as cam:
            return cam(images)

    def guided(view: nn.Module, layer: nn.Module, images: torch.Tensor, params: dict[str, Any]) -> Any:
        cams = run_grad_cam(pytorch_grad_cam.GradCAM, view, layer, images)
        model = pytorch_grad_cam.GuidedBackpropReLUModel(view, device="cpu")
        guided_maps = [model(images[i:i + 1].clone()) for i in range(images.shape[0])]  # one image per call
        return [g * c[..., None] for g, c in zip(guided_maps, cams)]

    def sobel(view: nn.Module, layer: nn.Module, images: torch.Tensor, params: dict[str, Any]) -> Any:
        from pytorch_grad_cam.sobel_cam import sobel_cam

        return [sobel_cam((img.permute(1, 2, 0).numpy() * 255).astype("uint8")) for img in images]

    return {"finercam": finer, "refinecam": refine, "sess": sess, "guidedgradcam": guided, "sobelcam": sobel}[name]


def _torchcam(cls_name: str) -> Callable[..., Any]:
    def run(view: nn.Module, layer: nn.Module, images: torch.Tensor, params: dict[str, Any]) -> Any:
        import torchcam.methods as methods

        names = {m: n for n, m in view.named_modules()}
        kwargs = {"input_shape": tuple(images.shape[1:])}
        if "samples" in params:
            kwargs["num_samples"] = params["samples"]
        with getattr(methods, cls_name)(view, target_layer=names[layer], **kwargs) as extractor:
            scores = view(images)
            return extractor(class_idx=scores.argmax(1).tolist(), scores=scores)
    return run


def _captum(cls_name: str) -> Callable[..., Any]:
    def run(view: nn.Module, layer: nn.Module, images: torch.Tensor, params: dict[str, Any]) -> Any:
        import captum.attr as attr

        with torch.no_grad():
            target = view(images).argmax(1).tolist()
        method = getattr(attr, cls_name)(view)
        if cls_name == "IntegratedGradients":
            return method.attribute(images, baselines=0.0, target=target, n_steps=params.get("steps", 50),
                                    internal_batch_size=32)
        if cls_name == "Occlusion":
            w, st = params.get("window", 16), params.get("stride", 8)
            return method.attribute(images, sliding_window_shapes=(3, w, w), strides=(3, st, st), baselines=0.0,
                                    target=target, perturbations_per_eval=64)
        return method.attribute(images.clone().requires_grad_(True), target=target)
    return run


def _grad_cam_class(cls_name: str) -> Callable[..., Any]:
    def run(view: nn.Module, layer: nn.Module, images: torch.Tensor, params: dict[str, Any]) -> Any:
        import pytorch_grad_cam

        return run_grad_cam(getattr(pytorch_grad_cam, cls_name), view, layer, images)
    return run


#: method -> (peer label, runner(view, layer module, images, method parameters)).
PEERS: dict[str, tuple[str, Callable[..., Any]]] = {
    **{m: ("pytorch-grad-cam", _grad_cam_class(c)) for m, c in GRAD_CAM_CLASSES.items()},
    **{m: ("pytorch-grad-cam", _grad_cam_class(c)) for m, c in (
        ("gradcamelementwise", "GradCAMElementWise"), ("eigengradcam", "EigenGradCAM"),
        ("segeigencam", "SegEigenCAM"), ("shapleycam", "ShapleyCAM"), ("kpcacam", "KPCA_CAM"), ("fem", "FEM"),
        ("fullgrad", "FullGrad"))},
    **{m: ("pytorch-grad-cam", _grad_cam_extra(m)) for m in ("finercam", "refinecam", "sess", "sobelcam")},
    "guidedgradcam": ("pytorch-grad-cam (GradCAM x GuidedBackpropReLUModel, 1 image per call)",
                      _grad_cam_extra("guidedgradcam")),
    "smoothgradcam++": ("torchcam", _torchcam("SmoothGradCAMpp")),
    "sscam": ("torchcam", _torchcam("SSCAM")),
    "iscam": ("torchcam", _torchcam("ISCAM")),
    "integrated_gradients": ("captum", _captum("IntegratedGradients")),
    "input_x_gradient": ("captum", _captum("InputXGradient")),
    "occlusion": ("captum", _captum("Occlusion")),
    "guidedbackprop": ("captum", _captum("GuidedBackprop")),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="gradcam,gradcam++,xgradcam,layercam,hirescam,eigencam",
                        help="comma-separated, or 'new' (every method of NEW_METHODS); scorecam/ablationcam run "
                             "B*C forward passes (slow)")
    parser.add_argument("--light", action="store_true", help="smaller settings of the costly methods, for both sides")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = build(args.model, args.classes)
    images = torch.rand(args.batch, 3, args.size, args.size)
    layer_name = "backbone." + model.feature_info[model.feature_info.cam_level].module
    view = LogitsView(model).eval()
    layer_module = dict(model.named_modules())[layer_name]

    def inference() -> None:
        with torch.no_grad():
            model(images)

    jobs: dict[str, Callable[[], Any]] = {"inference": inference, "floor": lambda: floor_pass(model, images)}
    methods = NEW_METHODS if args.methods == "new" else [m.strip() for m in args.methods.split(",") if m.strip()]
    peers: dict[str, str] = {}
    for method in methods:
        params = dict(LIGHT.get(method, {})) if args.light else {}
        options = {**params, **({"progress": False} if method in QUIET else {})}
        if method == "sess":
            options["base"] = {"name": "gradcam", "layer": layer_name}
        built = medcam.build_attribution({"name": method, **options})
        layer = layer_name if built.uses_layer and method not in ("refinecam", "sess") else None
        jobs[f"medcam:{method}"] = lambda built=built, layer=layer: built(model, images, layer=layer)
        if method in PEERS:
            label, runner = PEERS[method]
            peers[method] = label
            jobs[f"peer:{method}"] = lambda runner=runner, params=params: runner(view, layer_module, images, params)
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
        if f"peer:{method}" in medians:
            t_ref = medians[f"peer:{method}"]
            row.update(peer=peers[method], peer_s=t_ref, speedup=t_ref / t_medcam)
        row.update(over_inference=t_medcam / t_inference, over_floor=t_medcam / t_floor)
        rows.append(row)

    print(f"# medcam vs pytorch-grad-cam {_version('grad-cam')}, torchcam {_version('torchcam')}, captum "
          f"{_version('captum')} | model {args.model} | layer {layer_name} | "
          f"batch {args.batch}x3x{args.size}x{args.size} | CPU threads {args.threads} | "
          f"median of {args.repeats} | torch {torch.__version__}" + (" | --light" if args.light else ""))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = (f"{'method':34s} {'medcam s':>9s} {'peer s':>9s} {'peer/medcam':>11s} {'/infer':>7s} {'/floor':>7s}  "
              f"peer")
    print(header)
    print("-" * len(header))
    for row in rows:
        def fmt(key: str, spec: str) -> str:
            return format(row[key], spec) if key in row else "-"
        print(f"{row['method']:34s} {fmt('medcam_s', '9.3f')} {fmt('peer_s', '9.3f'):>9s} "
              f"{fmt('speedup', '10.2f') + ('x' if 'speedup' in row else ''):>11s} "
              f"{fmt('over_inference', '6.2f'):>7s} {fmt('over_floor', '6.2f'):>7s}  {row.get('peer', '')}")
    groups = {"gradient methods": GRADIENT_METHODS, "scorecam": {"scorecam"}, "ablationcam": {"ablationcam"}}
    verdicts = []
    for group, members in groups.items():
        ratios = [row["speedup"] for row in rows if row["method"] in members and "speedup" in row]
        if ratios:
            goal = GOALS[group]
            verdicts.append(f"{group} {min(ratios):.2f}x" + (f"..{max(ratios):.2f}x" if len(ratios) > 1 else "")
                            + f" (goal >= {goal:g}x: {'met' if min(ratios) >= goal else 'NOT met'})")
    if verdicts:
        print("grad-cam / medcam: " + "; ".join(verdicts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
