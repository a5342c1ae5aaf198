"""``medcam train``, ``medcam eval`` and ``medcam demo``."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click


def _train_config(config_file: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The training settings the user gave (a --config file, then options), validated; the spec's own
    ``train`` settings fill the rest (:meth:`medcam.engine.config.TrainConfig.for_spec`)."""
    from medcam.engine.config import TrainConfig

    base = TrainConfig.read(config_file) if config_file else {}
    base.update({k: v for k, v in overrides.items() if v is not None})
    TrainConfig.from_dict(base)  # errors now, before the data set is opened
    return base


def _is_main_process() -> bool:
    """False in the non-zero ranks of a torchrun launch (only rank 0 prints results)."""
    return int(os.environ.get("RANK", "0")) == 0


def _quiet() -> None:
    """Silence every tqdm bar, including the data package's (tqdm reads TQDM_DISABLE when first imported)."""
    os.environ["TQDM_DISABLE"] = "1"


def _set_threads(threads: int) -> None:
    if threads < 1:
        raise click.BadParameter(f"must be at least 1, got {threads}", param_hint="--threads")
    import torch

    torch.set_num_threads(threads)


def _default_out(spec: str) -> str:
    stem = Path(spec).stem if spec.lower().endswith((".yaml", ".yml", ".json")) else spec
    return str(Path("runs") / stem)


def _metrics_text(metrics: dict[str, Any]) -> str:
    from medcam.engine.logs import format_metrics

    return format_metrics(metrics)


@click.command("train")
@click.argument("spec")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="The data set folder.")
@click.option("--dataset", help="Layout: busi, imagefolder, nih, ... (default: detected from the folder).")
@click.option("--epochs", type=int, help="Passes over the training set (default 10).")
@click.option("--out", "out_dir", help="Output folder for checkpoints and logs (default runs/<name> with --name, "
                                       "else runs/<spec>); may hold name fields, e.g. results/{name}.")
@click.option("--name", "name", metavar="TEMPLATE",
              help="Run name from the settings, e.g. '{backbone}_lam{loss.attention_box.lam}_lr{lr}' (fields: spec "
                   "paths, training and data settings; docs/training.md). Names the summary file and the default "
                   "--out folder.")
@click.option("--folds", type=int, help="k-fold cross-validation with K folds instead of one train/val/test split.")
@click.option("--final", type=click.Choice(["ensemble", "refit", "none"]),
              help="With --folds: the one model the run ends with (DIR/model.pt): the fold models as an ensemble "
                   "(default for classifiers), or a model refit on all the data for the epoch count the folds "
                   "chose (default for segmenters).")
@click.option("--refit", is_flag=True,
              help="After training, refit on train + val for the epoch count validation chose, and test that "
                   "model (DIR/model.pt). Without --folds; with --folds see --final.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--seed", type=int, help="Training seed: weights, data order, augmentation (default 0).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON file of training settings (medcam.engine.TrainConfig); options override it.")
@click.option("--batch-size", type=int, help="Global batch size (default 32).")
@click.option("--lr", type=float, help="Peak learning rate (default 1e-3).")
@click.option("--optimizer", help="sgd, adam, adamw (default) or rmsprop.")
@click.option("--scheduler", help="constant, cosine (default), linear, step or plateau.")
@click.option("--balanced/--no-balanced", "balanced_sampler", default=None,
              help="Class-balanced sampling (default: on when the largest class is more than 1.5x the smallest).")
@click.option("--early-stopping", type=int, help="Stop after this many epochs without improvement.")
@click.option("--monitor", help="Validation metric for best checkpoint / early stopping (default balanced_accuracy; "
                                "dice for a segmenter).")
@click.option("--amp", help="auto (default), off, fp16 or bf16.")
@click.option("--device", help="auto (default), cpu, cuda, cuda:N.")
@click.option("--workers", "num_workers", type=int, help="Data-loading worker processes (default 0).")
@click.option("--augment", default="default", show_default=True,
              help="Training augmentation preset: none, flip, light, default.")
@click.option("--val", "val_fraction", type=float, default=0.15, show_default=True,
              help="Validation fraction (unless the layout has a val part).")
@click.option("--test", "test_fraction", type=float, default=0.15, show_default=True,
              help="Test fraction (unless the layout has a test part).")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of the stratified split.")
@click.option("--cache", "cache_dir", help="Folder for a one-time resized copy of the images (faster epochs).")
@click.option("--groups", help="Keep related images in one split: near_duplicates, or a CSV file image,group.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A data set option, e.g. -o task=effusion for NIH (repeatable).")
@click.option("--threads", type=int, help="CPU threads for PyTorch (default: PyTorch's choice).")
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def train_command(spec: str, data_path: str, dataset: str | None, out_dir: str | None, name: str | None,
                  folds: int | None, final: str | None, refit: bool, resume: bool, config_file: str | None, augment: str,
                  val_fraction: float, test_fraction: float,
                  split_seed: int, cache_dir: str | None, groups: str | None, options: tuple[str, ...],
                  threads: int | None, quiet: bool, as_json: bool, **overrides: Any) -> None:
    """Train SPEC (a preset name or a YAML/JSON model spec) on the data in --data.

    Splits the data (stratified, seeded) into train / val / test, trains with
    validation after every epoch, keeps the best checkpoint, and reports the
    test metrics of the best checkpoint. A segmenter spec (e.g. {name: unet,
    encoder: resnet34}) trains on the data's masks (BUSI, images/ + masks/
    folders) with Dice + BCE and reports Dice, IoU and box accuracy. With --folds K, runs k-fold
    cross-validation, reports mean +/- std over folds and ends with one model
    to serve, DIR/model.pt (--final). Multi-process:
    torchrun --nproc_per_node=N -m medcam train ...
    """
    if quiet:  # before tqdm is imported: it reads TQDM_DISABLE once
        overrides["progress"] = False
        _quiet()
    from medcam.data.factory import parse_options
    from medcam.engine.runs import DataConfig, cross_validate, train_on_folder

    if threads is not None:
        _set_threads(threads)
    config = _train_config(config_file, overrides)
    data = DataConfig(path=data_path, dataset=dataset, val=val_fraction, test=0.0 if folds else test_fraction,
                      split_seed=split_seed, augment=None if augment == "none" else augment, cache_dir=cache_dir,
                      groups=groups, options=parse_options(options))
    out = out_dir or (None if name else _default_out(spec))
    if folds and refit:
        raise click.BadParameter("with --folds the final model is chosen by --final (e.g. --final refit)",
                                 param_hint="--refit")
    if folds:
        result = cross_validate(spec, data, config, out, folds=folds, resume=resume, final=final, name=name)
        if not _is_main_process():
            return
        if as_json:
            click.echo(json.dumps({k: v for k, v in result.items() if k != "spec"}, indent=2))
            return
        summary = Path(result["out"]) / "cv_summary.txt"
        click.echo(summary.read_text().rstrip() if summary.is_file() else json.dumps(result["mean_std"], indent=2))
        click.echo(f"# results: {Path(result['out']) / 'cv_results.json'}")
        return
    result = train_on_folder(spec, data, config, out, resume=resume, name=name, refit=refit)
    if not _is_main_process():
        return
    if as_json:
        click.echo(json.dumps({k: v for k, v in result.items() if k != "spec"}, indent=2))
        return
    click.echo(f"# split: {result['split']}  best epoch: {result['best_epoch']}  time: {result['time_s']}s")
    if result["val"] is not None:
        click.echo(f"validation (best epoch {result['best_epoch']}):")
        click.echo(_metrics_text(result["val"]))
    if result["test"] is not None and result.get("refit"):
        click.echo(f"test (refit on train + val for {result['refit']['epochs']} epochs, {result['refit']['path']}):")
        click.echo(_metrics_text(result["test"]))
    elif result["test"] is not None:
        click.echo("test (best checkpoint):")
        click.echo(_metrics_text(result["test"]))
    click.echo(f"# checkpoints and logs: {result['out']}" + (f"  (run {result['name']})" if name else ""))


@click.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="The data set folder.")
@click.option("--dataset", help="Layout (default: the checkpoint's, or detected).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A data set option, e.g. -o task=effusion for NIH (repeatable).")
@click.option("--split", default="auto", show_default=True,
              help="all, train, val, test, or auto (the training run's test split when --data is its "
                   "folder, else all).")
@click.option("--batch-size", type=int, help="Images per batch (default 64; with --localization 16, the "
                                             "localization benchmark's attribution batch).")
@click.option("--device", default="auto", show_default=True)
@click.option("--sha256", metavar="HEX", help="Expected sha256 of CHECKPOINT's bytes (as sha256sum prints it).")
@click.option("--localization", is_flag=True,
              help="Score the model's maps on every image with a lesion mask or boxes (BUSI, mask folders, NIH "
                   "BBox_List_2017.csv, WSOL lists): MaxBoxAccV2, MaxBoxAcc, GT-known Loc, PxAP, mean IoU; for "
                   "box data also the ChestX-ray8 tables and SR's readout (docs/metrics.md).")
@click.option("--method", "methods", multiple=True, metavar="NAME",
              help="With --localization: attribution method (repeatable; default: the spec's own attribution "
                   "plus gradcam).")
@click.option("--target", type=click.Choice(["label", "predicted"]), default="label", show_default=True,
              help="With --localization: maps for the ground-truth class (GT-known) or the predicted class.")
@click.option("--faithfulness", is_flag=True,
              help="With --localization: also deletion, insertion, ROAD, average drop, pointing games and model "
                   "randomisation of the same maps (first 24 scored images).")
@click.option("--interval", type=click.FloatRange(0.0001, 0.5), help="With --localization: CAM threshold step "
                                                                     "(default 0.01).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def eval_command(checkpoint: str, data_path: str, dataset: str | None, options: tuple[str, ...], split: str,
                 batch_size: int | None, device: str, sha256: str | None, localization: bool,
                 methods: tuple[str, ...], target: str, faithfulness: bool, interval: float | None, quiet: bool,
                 as_json: bool) -> None:
    """Classification metrics of CHECKPOINT on the images in --data (with --localization: its maps'
    localization); for a segmenter checkpoint, Dice, IoU and box accuracy of its masks, overall and per
    image class."""
    if quiet:  # before tqdm is imported: it reads TQDM_DISABLE once
        _quiet()
    from medcam.data.factory import parse_options
    from medcam.engine.runs import DataConfig, evaluate_checkpoint

    data = DataConfig(path=data_path, dataset=dataset, options=parse_options(options))
    given = [name for name, on in (("--method", methods), ("--faithfulness", faithfulness),
                                   ("--interval", interval is not None), ("--target", target != "label")) if on]
    if given and not localization:
        raise click.UsageError(f"{given[0]} applies to --localization; add --localization")
    if localization:
        from medcam.bench.evaluate import format_evaluation, localize_checkpoint

        extra = {k: v for k, v in (("batch_size", batch_size), ("interval", interval)) if v is not None}
        result = localize_checkpoint(checkpoint, data, split=split, device=device, sha256=sha256,
                                     methods=list(methods), target=target, faithfulness=faithfulness,
                                     progress=not quiet, **extra)
        click.echo(json.dumps(result, indent=2) if as_json else format_evaluation(result))
        return
    result = evaluate_checkpoint(checkpoint, data, split=split, batch_size=batch_size or 64, device=device,
                                 progress=not quiet, sha256=sha256)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"# {checkpoint} on {data_path} ({result['split']}, {result['n']} images)")
    click.echo(_metrics_text(result["metrics"]))


@click.command("demo")
@click.option("--data", "data_path", type=click.Path(exists=True, file_okay=False),
              help="A BUSI-layout folder (class folders benign/ malignant/ normal/ with *_mask.png); "
                   "default: generate a small synthetic lesion data set.")
@click.option("--out", "out_dir", default="runs/demo", show_default=True, help="Output folder.")
@click.option("--epochs", type=int, help="Override the demo's number of epochs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, help="CPU threads for PyTorch (default: PyTorch's choice, the machine's "
                                          "cores; the run header prints it). On a shared CPU, fewer may be faster.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo_command(data_path: str | None, out_dir: str, epochs: int | None, seed: int, threads: int | None, quiet: bool,
                 as_json: bool) -> None:
    """Fine-tune ImageNet EfficientNet-Lite0 on BUSI-style ultrasound (a few minutes on a CPU)
    and report its held-out classification and localization."""
    if quiet:  # before tqdm is imported: it reads TQDM_DISABLE once
        _quiet()
    from medcam.demo import demo_report, run_demo

    if threads is not None:
        _set_threads(threads)
    result = run_demo(data_path, out_dir, epochs=epochs, seed=seed, progress=not quiet)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(demo_report(result))
    sys.stdout.flush()
