"""``medcam bench``: the localization benchmark (models x attribution methods x baselines)."""
from __future__ import annotations

import json
import shlex

import click


@click.command("bench")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="The data set folder: lesion masks (BUSI, images/ + masks/) or boxes (NIH with "
                   "BBox_List_2017.csv, WSOL lists); the spec's data.dataset names the layout.")
@click.option("--out", "out_dir", required=True, help="Output folder: report, plots, JSON, training runs.")
@click.option("--checkpoints", type=click.Path(exists=True, file_okay=False),
              help="Folder of earlier runs (<key>/last.pt or best.pt, per the spec's eval.checkpoint): load "
                   "those models instead of training them (e.g. OUT/models of an earlier run).")
@click.option("--overwrite", is_flag=True, help="Retrain models whose run folder in OUT/models already exists.")
@click.option("--models", help="Comma-separated model keys to run (default: all in the spec).")
@click.option("--size", type=int, help="Input size of every trained model (overrides the spec).")
@click.option("--epochs", type=int, help="Training epochs of every model (overrides the spec).")
@click.option("--threads", type=int, help="torch CPU threads (overrides the spec).")
@click.option("--quiet", is_flag=True, help="No progress bars or per-method lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the result rows as JSON.")
def bench_command(spec: str, data_path: str, out_dir: str, checkpoints: str | None, overwrite: bool,
                  models: str | None, size: int | None, epochs: int | None, threads: int | None, quiet: bool,
                  as_json: bool) -> None:
    """Train (or load) every model of SPEC, score every attribution method and baseline on held-out lesions
    (masks or boxes; without masks there is no PxAP).

    Writes OUT/localization.md (localization and faithfulness tables), localization.json (every number, the
    spec, seeds, held-out files, versions), localization_bars.png and
    localization_gallery.png. See docs/results.md.
    """
    from medcam.bench.run import run_benchmark

    keys = [k.strip() for k in models.split(",") if k.strip()] if models else None
    words = ["medcam", "bench", spec, "--data", data_path, "--out", out_dir]
    for flag, value in (("--checkpoints", checkpoints), ("--models", models), ("--size", size),
                        ("--epochs", epochs), ("--threads", threads)):
        if value is not None:
            words += [flag, str(value)]
    words += [flag for flag, on in (("--overwrite", overwrite), ("--quiet", quiet)) if on]
    record = run_benchmark(spec, data_path, out_dir, checkpoints=checkpoints, overwrite=overwrite, models=keys,
                           size=size, epochs=epochs, threads=threads, progress=not quiet,
                           command=" ".join(shlex.quote(w) for w in words))
    if as_json:
        click.echo(json.dumps(record["rows"], indent=2))
    else:
        from medcam.bench.report import markdown_table

        click.echo(markdown_table(record["rows"]))
        if record.get("faithfulness_rows"):
            from medcam.bench.faithfulness import faithfulness_markdown

            click.echo("Faithfulness and sanity (first "
                       f"{record['faithfulness']['n_images']} held-out lesion images):\n")
            click.echo(faithfulness_markdown(record["faithfulness_rows"], record["faithfulness"]["columns"]))
        click.echo(f"report: {out_dir}/localization.md  (wall time {record['wall_time_s']:.0f} s)")
