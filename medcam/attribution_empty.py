"""Empty attribution maps: the warning and the advice medcam gives about them.

Grad-CAM's map is ``ReLU(sum_c alpha_c A_c)``; for a class the model does not
predict the weighted sum is often negative everywhere, and the map is all
zeros. medcam flags such maps (``AttributionResult.empty``), warns once per
call, and the CLI and app say it next to the result.
"""
from __future__ import annotations

from typing import Sequence

__all__ = ["EmptyMapWarning", "EMPTY_MAP_ALTERNATIVES", "empty_map_advice"]


class EmptyMapWarning(UserWarning):
    """Some requested attribution maps are empty (all zeros); the message says what to try."""


#: Methods suggested when a map is empty: they keep positive evidence where Grad-CAM's ReLU leaves none.
EMPTY_MAP_ALTERNATIVES = ("gradcam++", "layercam")


def empty_map_advice(method: str, empty: int, total: int, classes: Sequence[str] = (), *, cli: bool = False,
                     predicted: bool = False) -> str:
    """The warning for ``empty`` of ``total`` maps of ``method`` being all zeros.

    ``classes`` names the target classes of the empty maps; ``cli`` phrases the
    advice as command-line options (``--method``, ``--target predicted``);
    ``predicted``: every empty map already explains the predicted class (so
    targeting it is no advice).
    """
    others = [m for m in EMPTY_MAP_ALTERNATIVES if m != method] or ["layercam"]
    which = f" for class {', '.join(repr(c) for c in classes)}" if classes else ""
    maps = "the map is" if total == 1 else f"{empty} of {total} maps are"
    try_methods = " or ".join(others)
    if predicted:
        why, how = ("even for the predicted class", f"try --method {try_methods}" if cli else
                    f"try method {try_methods}")
    else:
        why = "as for a class the model does not predict"
        how = (f"try --method {try_methods}, or --target predicted" if cli else
               f"try method {try_methods}, or explain the predicted class (target=None)")
    return (f"{method}: {maps} empty (all zero){which}: the score has no positive evidence at this layer, "
            f"{why}; {how}")
