"""Inference preprocessing: a checkpoint's ``preprocess`` plus command-line overrides.

``medcam explain`` and ``medcam app`` apply the preprocessing stored in the
checkpoint's spec, the same as training (:mod:`medcam.data.preprocess`). The
few settings a user may need to change at inference time (rolling-ball radius,
the resize) are merged over the spec's ``preprocess`` here and validated by the
spec validator, so a bad override gets the same error as a bad spec.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import SpecError

__all__ = ["OVERRIDE_KEYS", "merge_preprocess", "parse_size", "parse_radius", "parse_pixels"]

#: ``preprocess`` keys that may be overridden at inference time. ``mean``/``std``
#: are not among them: they belong to the trained weights.
OVERRIDE_KEYS: tuple[str, ...] = ("size", "resize", "resize_to", "downscale", "rolling_ball_radius")


def parse_size(text: str | None, what: str = "--size") -> list[int] | None:
    """``"224"`` -> ``[224, 224]``; ``"449,954"`` or ``"449x954"`` -> ``[449, 954]`` (height, width); None stays None."""
    if text is None:
        return None
    parts = [p.strip() for p in str(text).replace("x", ",").replace("X", ",").split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError as err:
        raise SpecError(f"{what}: expected HEIGHT[,WIDTH] in pixels, e.g. 224 or 449,954; got {text!r}") from err
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise SpecError(f"{what}: expected HEIGHT[,WIDTH] with positive pixel counts, got {text!r}")
    return values


def parse_pixels(text: str | int | None, what: str = "--max-pixels") -> int | None:
    """A pixel count: ``"50000000"``, ``"50M"`` / ``"50m"`` (millions) or ``"5e7"``; None stays None."""
    if text is None:
        return None
    value = str(text).strip().lower().replace("_", "").replace(",", "")
    scale = 1_000_000 if value.endswith(("m", "mpx")) else 1
    value = value[:-3] if value.endswith("mpx") else value[:-1] if value.endswith("m") else value
    try:
        pixels = float(value) * scale
    except ValueError as err:
        raise SpecError(f"{what}: expected a pixel count such as 50000000 or 50M, got {text!r}") from err
    if not pixels >= 1 or pixels != pixels:
        raise SpecError(f"{what}: expected a positive pixel count, got {text!r}")
    return int(pixels)


def parse_radius(text: str | int | None) -> int | None | str:
    """A rolling-ball radius option: a positive int, ``"none"``/``"off"``/``0`` (switch it off) or None (keep the spec's).

    Returns the radius, the string ``"off"``, or None.
    """
    if text is None:
        return None
    value = str(text).strip().lower()
    if value in ("none", "off", "null", "0", "false", "no"):
        return "off"
    try:
        radius = int(value)
    except ValueError as err:
        raise SpecError(f"--rolling-ball: expected a radius in pixels (e.g. 180) or 'none', got {text!r}") from err
    if radius < 0:
        raise SpecError(f"--rolling-ball: the radius must be positive, got {radius}")
    return radius


def merge_preprocess(spec: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The spec's ``preprocess`` with ``overrides`` applied, validated and fully resolved.

    Args:
        spec: a resolved model (or segmenter) spec with ``preprocess`` and ``in_chans``.
        overrides: keys of :data:`OVERRIDE_KEYS`; a value of None leaves the spec's
            setting, ``rolling_ball_radius="off"`` switches the rolling ball off.
            Changing ``resize`` drops the spec's ``downscale`` (only for ``none``)
            or ``resize_to`` (not for ``none``) unless they are overridden too.

    Returns:
        the resolved ``preprocess`` mapping (as :func:`medcam.spec.resolve_preprocess` returns it).

    Raises:
        SpecError: an unknown key, or a value the spec validator rejects (the
            message names the ``preprocess`` key).
    """
    from ..spec import resolve_preprocess

    base = dict(spec.get("preprocess") or {})
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - set(OVERRIDE_KEYS))
    if unknown:
        from ..registry import did_you_mean

        raise SpecError(f"preprocess override '{unknown[0]}' is not one of {', '.join(OVERRIDE_KEYS)}"
                        f"{did_you_mean(unknown[0], OVERRIDE_KEYS)}")
    if "resize" in given:
        if given["resize"] != "none" and "downscale" not in given:
            base["downscale"] = None
        if given["resize"] == "none" and "resize_to" not in given:
            base["resize_to"] = None
    if "size" in given and "resize_to" not in given:
        base["resize_to"] = None  # a new size makes the old resize-then-crop canvas meaningless
    if given.get("rolling_ball_radius") == "off":
        given["rolling_ball_radius"] = None
        base["rolling_ball_radius"] = None
    base.update(given)
    return resolve_preprocess(base, int(spec.get("in_chans", 3)))
