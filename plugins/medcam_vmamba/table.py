"""Print the registered VMamba configurations and their parameter counts as a Markdown table.

    python -m medcam_vmamba.table

Each count comes from a model actually built through the registry (on the
``meta`` device, so nothing is allocated): the ``<name>_in1k`` classifier
(1000 classes) and the backbone alone; the formula of
:meth:`medcam_vmamba.configs.VMambaConfig.num_params` is checked against both.
"""
from __future__ import annotations

from .configs import ALIASES, CONFIGS


def rows() -> list[dict[str, object]]:
    """One dict per configuration: architecture and built parameter counts."""
    import torch

    import medcam

    out = []
    for name, cfg in CONFIGS.items():
        with torch.device("meta"):
            model = medcam.build_model(f"{name}_in1k")
        total = sum(p.numel() for p in model.parameters())
        backbone = sum(p.numel() for p in model.backbone.parameters())
        if total != cfg.num_params() or backbone != cfg.num_params(None):
            raise AssertionError(f"{name}: built {total} / {backbone} parameters, formula {cfg.num_params()}")
        aliases = [a for a, target in ALIASES.items() if target == name]
        out.append({"name": name + (f" (= {', '.join(aliases)})" if aliases else ""), "official": cfg.official,
                    "depths": list(cfg.depths), "dims": cfg.dims, "d_state": cfg.d_state,
                    "ssm_ratio": cfg.ssm_ratio, "mlp_ratio": cfg.mlp_ratio,
                    "gate": "z" if cfg.gate else "noz", "down/stem": f"{cfg.downsample}/{cfg.patch_embed}",
                    "drop_path": cfg.drop_path_rate, "params_1k": f"{total / 1e6:.2f}M",
                    "backbone": f"{backbone / 1e6:.2f}M", "top1": cfg.top1})
    return out


def main() -> None:
    table = rows()
    keys = list(table[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in table:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
