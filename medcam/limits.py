"""Every size limit medcam applies to its inputs, in one place (see ``docs/guarantees.md``).

Each guards against a small or mistyped input that would otherwise cost
gigabytes or minutes: a 140 KB PNG that decodes to 12000 x 12000 pixels, a
``num_classes`` of 10**12, a request line of a gigabyte. The modules that
apply them import them from here; the options that change them per call are
named next to each. This module imports nothing, so the command line can show
the defaults in its help without loading numpy or torch.
"""
from __future__ import annotations

__all__ = ["MAX_PIXELS", "REDUCE_ABOVE_PIXELS", "RENDER_SIZE", "MAX_CLASSES", "MAX_IN_CHANS", "MAX_REQUEST_CHARS",
           "APP_FILE_LIFETIME_S"]

#: Pixels (height x width) of an image file or array medcam reads: 50 million (about 7000 x 7000),
#: well below Pillow's own decompression-bomb limit of 179 million. A file over it is refused from
#: its header, before any pixel is decoded. Per call: ``max_pixels=`` / ``--max-pixels``.
MAX_PIXELS = 50_000_000

#: Images of more pixels than this (4096 x 4096) are reduced while they are read, by the largest
#: integer factor that keeps at least twice the size the model's resize step produces
#: (:meth:`medcam.data.Preprocess.reduction`), in training and at inference alike.
REDUCE_ABOVE_PIXELS = 4096 * 4096

#: Longest side, in pixels, of the maps and pictures ``medcam explain`` and the app make of one image;
#: larger images are shown reduced by an integer factor. Per call: ``render_size=`` / ``--render-size``.
RENDER_SIZE = 2048

#: Upper bounds of a spec's ``num_classes`` and ``in_chans``: far above any real model (ImageNet-21k has
#: 21,841 classes), far below a typo's allocation.
MAX_CLASSES = 100_000
MAX_IN_CHANS = 256

#: Characters of one request line of ``medcam explain --serve`` (1 MiB); a longer line is answered
#: with a fail record and skipped without being held in memory.
MAX_REQUEST_CHARS = 1 << 20

#: Seconds the web app keeps an upload and the pictures it served in Gradio's cache; older files are
#: deleted (checked every half hour), so a long-running app does not fill its temporary folder.
APP_FILE_LIFETIME_S = 3600
