"""Run modules with their weights frozen for one term of a loss, without copying them.

BAS (Wu et al., CVPR 2022) and SR (Wang et al., Sci Rep 2024) re-score a masked
feature map through the last backbone stage and the classifier, and that term
must train only the mask, not the re-run weights. Their code deep-copies the
stage and the classifier on every forward pass. Here the same modules run
through :func:`torch.func.functional_call` with *detached* parameters: the term
has a graph back to its input (the mask) but none to the weights. Buffers are
cloned, so batch-norm running statistics of the real modules are not updated by
the extra pass (the copies in the reference code are discarded the same way).
"""
from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["frozen_call", "FrozenTail"]


def frozen_call(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """``module(*args, **kwargs)`` with every parameter detached and every buffer cloned.

    The output depends on the inputs through the autograd graph but gives no
    gradient to ``module``'s parameters, and leaves its buffers unchanged.
    """
    state: dict[str, Tensor] = {name: p.detach() for name, p in module.named_parameters()}
    state.update({name: b.clone() for name, b in module.named_buffers()})
    return functional_call(module, state, args, kwargs)


class FrozenTail(nn.Module):
    """A temporary wrapper: ``fn(backbone, head, x)`` as a module, for :func:`frozen_call`.

    It holds references (not copies) to ``backbone`` and ``head``; build one per
    call and do not register it anywhere (it would duplicate their state).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, fn: Callable[[nn.Module, nn.Module, Tensor], Tensor]):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self._fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self._fn(self.backbone, self.head, x)
