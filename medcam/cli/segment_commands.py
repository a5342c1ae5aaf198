"""``medcam segment``: a segmenter's masks for every image of a data set, as an ``images/`` + ``masks/`` folder."""
from __future__ import annotations

import json

import click


@click.command("segment")
@click.argument("segmenter")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="The data set folder (any layout medcam reads: nih, busi, imagefolder, masks, ...).")
@click.option("--dataset", help="Layout (default: detected from the folder).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A data set option, e.g. -o task=effusion for NIH (repeatable).")
@click.option("--out", "out_dir", required=True, help="Output folder: images/ (copies) and masks/ (PNG 0/255).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Foreground: sigmoid(logit) above this value.")
@click.option("--sha256", metavar="HEX", help="Expected sha256 of a SEGMENTER checkpoint file.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def segment_command(segmenter: str, data_path: str, dataset: str | None, options: tuple[str, ...], out_dir: str,
                    threshold: float, sha256: str | None, device: str, quiet: bool, as_json: bool) -> None:
    """Write SEGMENTER's mask of every image in --data to --out as images/ + masks/ (the 'masks' layout).

    SEGMENTER is a segmenter checkpoint, a spec file or a registered name, e.g.
    lung_fields (training-free lung fields of chest radiographs). The folder
    trains a segmenter on the masks as pseudo-labels (docs/segmentation.md):
    medcam segment lung_fields --data ../shared/data/nih_sample --out lungs_pseudo
    """
    from medcam.data.factory import build_dataset, parse_options
    from medcam.engine.distributed import resolve_device
    from medcam.outputs import output_folder
    from medcam.segment_folder import write_mask_folder
    from medcam.segmenter_source import open_segmenter

    output_folder(out_dir, create=False)
    net = open_segmenter(segmenter, what="SEGMENTER", map_location=resolve_device(device), sha256=sha256)
    data = build_dataset(dataset, data_path, **parse_options(options))
    summary = write_mask_folder(net, [r.path for r in data.records], out_dir, threshold=threshold,
                                progress=not quiet)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return
    click.echo(f"{summary.images} masks in {summary.out}/masks (images in {summary.out}/images); "
               f"empty: {summary.empty}; mean foreground fraction {summary.mean_fraction:.3f}")
