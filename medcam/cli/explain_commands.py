"""``medcam explain`` (images, folders, or a stdin/stdout JSON service) and ``medcam app`` (the web app)."""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from medcam.limits import MAX_PIXELS, RENDER_SIZE

#: Options shared by ``explain`` and ``app``: what to compute and how to preprocess.
_RESIZE_MODES = ("square", "pad", "none")


def _common_options(func: Any) -> Any:
    options = [
        click.option("--segmenter", "segmenter_path", type=click.Path(dir_okay=False),
                     help="A segmenter: a checkpoint, or a name such as lung_fields (training-free lung fields of "
                          "chest X-rays; medcam list segmenters). Adds the mask; boxes come from its connected "
                          "components."),
        click.option("--sha256", metavar="HEX",
                     help="Expected sha256 of CHECKPOINT's bytes (as sha256sum prints it, from a source you trust); "
                          "another file is refused before it is read."),
        click.option("--segmenter-sha256", metavar="HEX", help="Expected sha256 of the --segmenter checkpoint file."),
        click.option("--method", help="Attribution method (medcam list attributions); default: the checkpoint's "
                                      "spec 'attribution', else gradcam."),
        click.option("--target", help="Class to explain (name or index), or 'predicted' (the default: each "
                                      "image's predicted class)."),
        click.option("--threshold", type=click.FloatRange(0, 1),
                     help="Attribution boxes: connected regions of the [0, 1] map above this value (default: the "
                          "model head's own box threshold, 0.83 for the SR/WSOL fpm head, else 0.5)."),
        click.option("--ground-truth/--no-ground-truth", "ground_truth", default=True, show_default=True,
                     help="Draw the image's ground truth when its files have one (a BUSI or images/+masks/ mask's "
                          "outline, NIH BBox_List_2017.csv or WSOL *_gt.txt boxes), in magenta."),
        click.option("--mask-threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Segmenter foreground: sigmoid(logit) above this value."),
        click.option("--segmenter-method", metavar="METHOD",
                     help="Also map what the --segmenter looked at: this attribution method (e.g. gradcam) of the "
                          "score of its predicted region, written as <stem>_segmap_<time>.png (a trained "
                          "segmenter; not lung_fields)."),
        click.option("--rolling-ball", "rolling_ball", metavar="RADIUS|none",
                     help="Override the spec's rolling-ball background subtraction radius (pixels; the dental "
                          "screener used 180), or 'none' to switch it off."),
        click.option("--grey", is_flag=True,
                     help="Convert every image to greyscale before preprocessing (colour exports of grey scans)."),
        click.option("--size", metavar="H[,W]", help="Override the spec's input size preprocess.size."),
        click.option("--resize", type=click.Choice(_RESIZE_MODES),
                     help="Override preprocess.resize: square (stretch), pad (keep the aspect ratio), none (keep scale)."),
        click.option("--resize-to", metavar="H[,W]", help="Override preprocess.resize_to (resize, then center-crop to size)."),
        click.option("--downscale", type=click.FloatRange(min=1), help="Override preprocess.downscale (with --resize none)."),
        click.option("--min-size", type=click.IntRange(min=1), default=16, show_default=True,
                     help="Images smaller than this many pixels on a side fail with 'wrong size'."),
        click.option("--max-pixels", metavar="N|NM", default=None,
                     help=f"Images of more pixels (height x width) fail before they are decoded, e.g. 80M "
                          f"(default: {MAX_PIXELS / 1e6:g}M)."),
        click.option("--render-size", type=click.IntRange(min=16), default=RENDER_SIZE, show_default=True,
                     help="Longest side of the pictures and maps; larger images are shown reduced "
                          "(boxes stay in original pixels)."),
        click.option("--cmap", default="jet", show_default=True, help="Matplotlib colormap of the saliency map."),
        click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="Weight of the map in the overlay."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _explainer(checkpoint: str, segmenter_path: str | None, sha256: str | None, segmenter_sha256: str | None,
               method: str | None, target: str | None,
               threshold: float | None, ground_truth: bool, mask_threshold: float, segmenter_method: str | None,
               rolling_ball: str | None,
               grey: bool, size: str | None,
               resize: str | None, resize_to: str | None, downscale: float | None, min_size: int,
               max_pixels: str | None, render_size: int, cmap: str, alpha: float, device: str) -> Any:
    from medcam.inference.pipeline import Explainer
    from medcam.inference.settings import parse_pixels, parse_radius, parse_size

    overrides = {"size": parse_size(size), "resize": resize, "resize_to": parse_size(resize_to, "--resize-to"),
                 "downscale": downscale, "rolling_ball_radius": parse_radius(rolling_ball)}
    try:
        return Explainer.from_checkpoint(checkpoint, segmenter_path, device=device, sha256=sha256,
                                         segmenter_sha256=segmenter_sha256, method=method, target=target,
                                         threshold=threshold, ground_truth=ground_truth,
                                         mask_threshold=mask_threshold, segmenter_method=segmenter_method,
                                         preprocess=overrides,
                                         grey=grey, min_size=min_size, max_pixels=parse_pixels(max_pixels),
                                         render_size=render_size, cmap=cmap, alpha=alpha)
    except (ValueError, RuntimeError) as err:  # e.g. a target class out of range, CUDA asked but absent
        from medcam.errors import MedcamError

        if isinstance(err, MedcamError):
            raise  # printed as one line, exit status 2, by medcam.cli.main
        raise click.UsageError(str(err)) from err


@click.command("explain")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, type=click.Path())
@click.option("--out", "out_dir", default="runs/explain", show_default=True,
              help="Folder for the PNGs (<stem>_saliency_<time>.png, <stem>_overlay_<time>.png, <stem>_mask_<time>.png, "
                   "<stem>_segmap_<time>.png).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image per line (docs/explain.schema.json).")
@click.option("--serve", "--stdin", "serve_mode", is_flag=True,
              help="Answer JSON requests {\"img_path\": ..., \"destination_path\": ...} read from stdin, one line "
                   "each, with one JSON line each on stdout.")
@click.option("--protocol", type=click.Choice(["medcam", "dental"]), default="medcam", show_default=True,
              help="--serve answer format: medcam's record, or the dental screener's {result, diagnosis, "
                   "saliency_img_path, overlay_img_path} byte for byte (reasons and warnings then go to stderr).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Leave out files whose name or path matches, e.g. '*_mask*' (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_common_options
def explain_command(checkpoint: str, images: tuple[str, ...], out_dir: str, as_json: bool, serve_mode: bool,
                    protocol: str, exclude: tuple[str, ...], quiet: bool, **options: Any) -> None:
    """Classify IMAGES (files or folders, searched recursively) with CHECKPOINT and explain each verdict.

    For every image: the class and per-class probabilities, an attribution map
    (saliency and overlay PNGs), boxes in original-image pixels and, with
    --segmenter, a mask PNG. The checkpoint's preprocessing is applied as in
    training. A bad image gives a 'fail' result with the reason and the batch
    goes on. Exit status: 0 when every image is ok, 1 when some failed, 2 for
    usage errors (bad options, checkpoint, method).
    """
    from medcam.inference.inputs import collect_images

    if serve_mode and images:
        raise click.UsageError("--serve reads requests from stdin: give no IMAGE arguments")
    if protocol != "medcam" and not serve_mode:
        raise click.UsageError(f"--protocol {protocol} is the answer format of --serve; add --serve")
    if not serve_mode and not images:
        raise click.UsageError("give one or more IMAGE files or folders (or --serve to read JSON requests from stdin)")
    from medcam.outputs import output_folder

    output_folder(out_dir, create=False)  # a file given as --out: one line now, not a failure per image
    paths = [] if serve_mode else collect_images(images, exclude)
    if not serve_mode and not paths:
        raise click.UsageError(f"no image files found in {', '.join(images)} (extensions: .png .jpg .jpeg .bmp "
                               f".tif .tiff .gif .webp{'; after --exclude' if exclude else ''})")
    explainer = _explainer(checkpoint, **options)
    if serve_mode:
        from medcam.inference.serve import serve

        if hasattr(sys.stdin, "reconfigure"):  # undecodable bytes become U+FFFD: that request fails, not the service
            sys.stdin.reconfigure(errors="replace")
        serve(explainer, sys.stdin, sys.stdout, default_out=out_dir, protocol=protocol, stderr=sys.stderr)
        return
    failed = _run_batch(explainer, paths, out_dir, as_json, quiet)
    if failed:
        # SystemExit rather than ctx.exit(1): medcam.cli.main runs click with standalone_mode=False,
        # where click turns ctx.exit(code) into a return value that would be lost
        sys.exit(1)


def _run_batch(explainer: Any, paths: list[Any], out_dir: str, as_json: bool, quiet: bool) -> int:
    """Explain every path, printing a JSON line or a table row as each finishes; returns the number failed."""
    from tqdm import tqdm
    from medcam.progress import show_bar

    from medcam.inference.record import format_row, summary_line

    records = []
    with tqdm(paths, desc="explain", unit="image", disable=not show_bar(not quiet) or len(paths) < 2, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for path in bar:
            record = explainer.run(path, out_dir)
            records.append(record)
            line = json.dumps(record) if as_json else format_row(record)
            bar.write(line, file=sys.stdout)
            sys.stdout.flush()
    failed = sum(r["result"] != "ok" for r in records)
    if not as_json:
        click.echo(summary_line(records) + (f"; pictures in {out_dir}" if failed < len(records) else ""))
    elif failed:
        click.echo(summary_line(records), err=True)
    return failed


@click.command("app")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 exposes the app to the network).")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@_common_options
def app_command(checkpoint: str, host: str, port: int, **options: Any) -> None:
    """Serve a web page for CHECKPOINT: upload an image, see the class with per-class confidence,
    the attribution overlay (method selectable), the segmentation mask (--segmenter) and the
    boxes, and download the JSON. Needs the [app] extra: pip install 'medcam[app]'.
    """
    from medcam.app import launch, require_gradio

    require_gradio()  # a missing extra is reported before the model is loaded
    explainer = _explainer(checkpoint, **options)
    click.echo(f"medcam app: http://{host}:{port}  (Ctrl+C to stop)", err=True)
    launch(explainer, host=host, port=port, checkpoint=checkpoint)
