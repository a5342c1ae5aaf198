"""``medcam list``, ``medcam info`` and ``medcam build``."""
from __future__ import annotations

import json
import warnings
from typing import Any

import click

from medcam.registry import REGISTRIES, get_registry, normalize_name


def _kind_or_pattern(kind: str | None, pattern: str | None) -> tuple[list[str], str]:
    """``medcam list resnet*`` searches every kind; ``medcam list backbone resnet*`` one."""
    if kind is None:
        return list(REGISTRIES), "*"
    key = normalize_name(kind)
    if key in REGISTRIES or key + "s" in REGISTRIES:
        return [get_registry(key).kind], pattern or "*"
    if pattern is not None:
        get_registry(kind)  # raises with close matches
    return list(REGISTRIES), kind


def _add_weights_status(row: dict[str, Any]) -> dict[str, Any]:
    """Backbones get ``pretrained_weights`` (their declared sources and whether each is installed);
    weights sources get ``installed`` and the file found. Reads package metadata only."""
    from medcam import weights

    if row.get("error"):
        return row
    if row["kind"] == "backbones":
        status = weights.weights_status(row["name"])
        if status:
            row["pretrained_weights"] = status
    elif row["kind"] == "weights":
        source = REGISTRIES["weights"].get(row["name"])
        path = weights.locate(source)
        row["installed"] = path is not None
        row["installed_file"] = str(path) if path else None
        row["install"] = source.install_hint
    return row


def _weights_text(row: dict[str, Any]) -> str:
    status = row.get("pretrained_weights")
    if status:
        installed = [s["name"] for s in status if s["installed"]]
        return f"  [weights: {', '.join(installed)}]" if installed else f"  [weights not installed: {status[0]['install']}]"
    if row["kind"] == "weights":
        return "  [installed]" if row.get("installed") else f"  [not installed: {row.get('install')}]"
    return ""


def _row_text(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"  {row['name']:<28} BROKEN ({row['provider']}): {row['error']}"
    extra = ""
    if row.get("channels") is not None:
        extra = f"  channels={row['channels']} strides={row['strides']}"
    summary = row.get("summary") or ""
    provider = "" if row["provider"] == "medcam" else f" [{row['provider']}]"
    return f"  {row['name']:<28} {summary}{provider}{extra}{_weights_text(row)}"


@click.command("list")
@click.argument("kind", required=False)
@click.argument("pattern", required=False)
@click.option("--names-only", is_flag=True, help="Only names (reads no plugin module at all).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(kind: str | None, pattern: str | None, names_only: bool, as_json: bool) -> None:
    """List registered names: KIND is backbones, segmenters, heads, attributions,
    losses, models, metrics, weights or datasets (singular works); PATTERN is a glob such as 'resnet*'.
    Backbones with declared pretrained weights say whether they are installed."""
    kinds, glob = _kind_or_pattern(kind, pattern)
    result: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in kinds:
            registry = REGISTRIES[k]
            result[k] = registry.list(glob) if names_only else [_add_weights_status(r) for r in registry.infos(glob)]
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    total = 0
    for k, rows in result.items():
        if not rows and len(kinds) > 1:
            continue
        click.echo(f"{k} ({len(rows)}):")
        for row in rows:
            click.echo(f"  {row}" if names_only else _row_text(row))
        total += len(rows)
    if total == 0:
        click.echo(f"no names match '{glob}'")


@click.command("info")
@click.argument("name")
@click.option("--kind", help="Look only in this registry (when a name exists in several).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info_command(name: str, kind: str | None, as_json: bool) -> None:
    """Show what NAME is: provider, summary, citation, parameters and, for
    backbones, feature channels and strides. Builds nothing."""
    from medcam.errors import UnknownNameError
    from medcam.registry import did_you_mean

    registries = [get_registry(kind)] if kind else list(REGISTRIES.values())
    found = [_add_weights_status(r.info(name)) for r in registries if name in r]
    if not found:
        every = [n for r in registries for n in r.list()]
        where = f"{registries[0].singular} " if kind else "name "
        raise UnknownNameError(f"unknown {where}'{name}'{did_you_mean(normalize_name(name), every)} (medcam list)")
    if as_json:
        click.echo(json.dumps(found if len(found) > 1 else found[0], indent=2, default=str))
        return
    for i, row in enumerate(found):
        if i:
            click.echo("")
        click.echo(f"{row['name']} ({REGISTRIES[row['kind']].singular})")
        for key in ("summary", "citation", "provider", "value", "channels", "strides", "cam_level", "layout"):
            if row.get(key) is not None:
                click.echo(f"  {key + ':':<11}{row[key]}")
        others = {k: v for k, v in row.items() if k not in {"name", "kind", "summary", "citation", "provider",
                                                            "value", "channels", "strides", "cam_level", "layout",
                                                            "parameters"} and v is not None}
        for key, value in others.items():
            if key == "pretrained_weights":
                for source in value:
                    state = f"installed at {source['file']}" if source["installed"] else \
                        f"not installed ({source['install']})"
                    click.echo(f"  {'weights:':<11}{source['name']}: {source['trained_on']}, {source['license']}, "
                               f"package {source['package']}, {state}")
                continue
            click.echo(f"  {key + ':':<11}{value}")
        if isinstance(row.get("parameters"), dict):
            click.echo("  parameters:")
            for pname, default in row["parameters"].items():
                click.echo(f"    {pname} = {default!r}")
        elif row["kind"] == "models":
            from medcam.spec import dump_spec

            click.echo("  spec:")
            spec = {k: v for k, v in REGISTRIES["models"].get(row["name"]).items()}
            for line in dump_spec(spec).splitlines():
                click.echo(f"    {line}")


@click.command("build")
@click.argument("spec")
@click.option("--segmenter", is_flag=True, help="SPEC describes a segmenter, not a classifier.")
@click.option("--input-size", nargs=2, type=int, help="H W of the dummy input (default: the spec's preprocess.size).")
@click.option("--num-classes", type=click.IntRange(min=1),
              help="Set num_classes (a training spec leaves it to the data; without this option it is read from "
                   "class_names when the spec has them).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def build_command(spec: str, segmenter: bool, input_size: tuple[int, int] | None, num_classes: int | None,
                  as_json: bool) -> None:
    """Build SPEC (a preset name or a YAML/JSON file), then print the resolved
    spec, the parameter count and the output shapes for a dummy batch of one."""
    import torch

    from medcam.build import build_model, build_segmenter
    from medcam.spec import dump_spec, load_spec

    source: Any = spec
    if num_classes is not None:
        source = {**load_spec(spec), "num_classes": num_classes}
    model = build_segmenter(source) if segmenter else build_model(source)
    model.eval()
    h, w = input_size or model.input_size
    x = torch.rand(1, model.in_chans, h, w)
    with torch.no_grad():
        out = model(x)
    shapes: dict[str, Any] = {}
    if segmenter:
        shapes["mask_logits"] = list(out.shape)
    else:
        shapes["logits"] = list(out.logits.shape)
        shapes.update({f"maps.{k}": list(v.shape) for k, v in out.maps.items()})
        with torch.no_grad():
            shapes["features"] = [list(f.shape) for f in model.forward_features(x)]
    params = sum(p.numel() for p in model.parameters())
    if as_json:
        click.echo(json.dumps({"spec": model.spec, "parameters": params, "input": [1, model.in_chans, h, w],
                               "outputs": shapes}, indent=2))
        return
    click.echo(dump_spec(model.spec).rstrip())
    click.echo(f"# parameters: {params:,}")
    click.echo(f"# input: {[1, model.in_chans, h, w]}")
    for key, shape in shapes.items():
        click.echo(f"# {key}: {shape}")
