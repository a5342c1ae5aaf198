"""Light factories of the timm plugin, derived from the variant table.

Nothing heavy is imported here (no torch, no timm): ``medcam list backbones`` and
``medcam info resnet50`` read metadata without building anything. Each factory
imports :mod:`medcam_timm.backbone` (and so timm) only when it is called.

Every registered name is a row of :data:`medcam_timm.variants.VARIANTS`; its
factory (keyword signature, docstring, registry metadata) is generated from the
row and its family by :func:`variant_factory`, one per row, and bound here as a
module attribute of the same name (what its entry point names). The metadata of
each name (``channels``, ``strides``, ``modules``, ``cam_level``) describes the
default ``out_indices`` (all levels); ``tests/plugins/medcam_timm/test_entries.py``
checks it against the built model.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from medcam.registry import describe

from .variants import CHEXNET_CITATION, FAMILIES, VARIANTS, Family, Rate, Variant

__all__ = ["FAMILIES", "VARIANTS", "Family", "Variant", "CHEXNET_CITATION", "variant_factory", "timm_namespace",
           *VARIANTS]

TIMM_CITATION = "Wightman, PyTorch Image Models (timm), 2019, doi:10.5281/zenodo.4414861"

_COMMON_ARGS = """

    Args:
        in_chans: image channels (set by medcam from the model spec). With weights
            made for 3 channels (``pretrained`` or ``checkpoint_path``), the first
            conv is adapted like timm does: for 1 channel its RGB filters are summed;
            for other counts they are repeated and scaled by ``3 / in_chans``.
        pretrained: ImageNet weights, offline first: an installed weights package
            declared for this backbone (``medcam list weights``; digest checked), else
            timm's weights from the Hugging Face cache, else a download when the hub
            answers; otherwise an error that says what to install.
        checkpoint_path: a local state dict to load instead (offline): {formats};
            bare or under ``"state_dict"``/``"model"``; classifier weights are dropped.
        out_indices: which levels to return (default all; negative indices count
            from the end). Out-of-range indices are an error.
{extra}
    Returns:
        a :class:`medcam_timm.backbone.TimmBackbone`: ``forward(x)`` maps
        ``(B, in_chans, H, W)`` to ``[(B, C_i, H / s_i, W / s_i), ...]`` (H, W multiples of 32).
    """


def _parameters(rates: tuple[Rate, ...]) -> list[inspect.Parameter]:
    """The keyword parameters of a variant factory: the shared four, then the family's rates."""
    kw = inspect.Parameter.POSITIONAL_OR_KEYWORD
    shared = [("in_chans", 3, "int"), ("pretrained", False, "bool"), ("checkpoint_path", None, "str | None"),
              ("out_indices", None, "list[int] | None")]
    params = [inspect.Parameter(name, kw, default=default, annotation=hint) for name, default, hint in shared]
    return params + [inspect.Parameter(r.name, kw, default=0.0, annotation="float") for r in rates]


def _docstring(variant: Variant) -> str:
    family = variant.spec
    levels = f"Levels {tuple(variant.channels)} at strides {tuple(family.strides)}."
    note = f" {variant.note}" if variant.note else ""
    extra = "".join(f"        {r.name}: {r.doc}\n" for r in family.rates)
    return (f"{variant.summary}.\n\n    {levels}{note}"
            + _COMMON_ARGS.format(formats=family.formats.format(name=variant.name), extra=extra))


def variant_factory(name: str) -> Callable[..., Any]:
    """The registered factory of ``VARIANTS[name]``: explicit keyword parameters (the spec
    validator and ``medcam info`` read its signature), generated docs and registry metadata."""
    variant = VARIANTS[name]
    family = variant.spec
    signature = inspect.Signature(_parameters(family.rates), return_annotation=Any)

    def factory(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)  # TypeError on unknown or repeated parameters, as a def would
        bound.apply_defaults()
        values = dict(bound.arguments)
        rates = {r.name: (r.timm_key, values.pop(r.name)) for r in family.rates}
        from .backbone import build_variant

        return build_variant(variant, rates=rates, **values)

    factory.__name__ = factory.__qualname__ = name
    factory.__module__ = __name__
    factory.__signature__ = signature  # type: ignore[attr-defined]
    factory.__doc__ = _docstring(variant)
    return describe(
        summary=variant.summary,
        citation=variant.citation,
        channels=list(variant.channels),
        strides=list(family.strides),
        cam_level=-1,
        layout=family.layout,
        modules=variant.backbone_modules(),
        input_multiple=32,
        timm_model=variant.timm_model,
        family=family.title,
    )(factory)


globals().update({name: variant_factory(name) for name in VARIANTS})


# ---------------------------------------------------------------------------- timm/<any name>
@describe(
    summary="Any timm model that supports feature extraction: 'timm/<timm model name>' (e.g. timm/convnext_tiny)",
    citation=TIMM_CITATION,
    namespace=True,
    example="resnet10t",
    input_multiple=32,
)
def timm_namespace(model_name: str, in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                   out_indices: list[int] | None = None, drop_path_rate: float | None = None,
                   model_kwargs: dict[str, Any] | None = None) -> Any:
    """``timm/<model_name>``: timm's own feature extractor (``features_only=True``) for any timm model.

    Args:
        model_name: a timm model name, optionally with a weight tag
            (``convnext_tiny``, ``resnet50.a1_in1k``); ``timm.list_models()`` lists them.
            An unknown name is an error with close matches.
        in_chans: image channels (set by medcam); pretrained first convs are adapted as timm does
            (RGB filters summed for 1 channel).
        pretrained: timm's pretrained weights (Hugging Face cache; downloaded when online).
        checkpoint_path: a local timm state dict of this model (bare or under
            ``"state_dict"``/``"model"``); classifier weights are dropped.
        out_indices: levels to return (default all of timm's ``feature_info``).
        drop_path_rate: stochastic depth rate, for models that have it (``None``: timm's default).
        model_kwargs: any other keyword arguments of the timm model (``{"output_stride": 16}``).

    Returns:
        a :class:`medcam_timm.backbone.TimmBackbone`; its channels and strides are timm's
        ``feature_info`` for that model. ``forward_from`` works when timm extracts the
        features by running the model's top-level modules in order (most CNNs).
    """
    from .backbone import build_timm

    return build_timm(model_name, in_chans=in_chans, pretrained=pretrained, checkpoint_path=checkpoint_path,
                      out_indices=out_indices, drop_path_rate=drop_path_rate, model_kwargs=model_kwargs)
