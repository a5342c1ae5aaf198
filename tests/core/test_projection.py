"""First principal components (medcam.projection) against NumPy's SVD, and the sign rules."""
from __future__ import annotations

import numpy as np
import torch

from medcam.projection import first_component


def test_first_component_equals_numpy_svd_with_the_sign_rules():
    gen = torch.Generator().manual_seed(0)
    terms = torch.rand(3, 5, 4, 6, generator=gen) - 0.3
    for center in (True, False):
        for rule in ("reference", "extreme"):
            got = first_component(terms, center=center, sign=rule).double().numpy()
            for i in range(3):
                matrix = terms[i].double().numpy().reshape(5, 24).T
                if center:
                    matrix = matrix - matrix.mean(axis=0)
                projection = matrix @ np.linalg.svd(matrix, full_matrices=False)[2][0]
                if rule == "extreme":
                    flip = abs(projection.min()) > abs(projection.max())
                else:
                    reference = terms[i].sum(0).double().numpy().ravel()
                    flip = projection @ (reference - reference.mean()) < 0
                expected = (-projection if flip else projection).reshape(4, 6)
                np.testing.assert_allclose(got[i], expected, rtol=1e-6, atol=1e-8)


def test_rank_one_terms_recover_their_spatial_pattern():
    """Terms u_c * m (one spatial pattern m): the first component is proportional to m - mean(m)."""
    m = torch.tensor([[0.0, 1.0, 2.0], [3.0, 1.0, 0.0]])
    u = torch.tensor([1.0, 2.0, -0.5])
    projection = first_component((u[:, None, None] * m)[None])[0]
    centred = m - m.mean()
    ratio = projection / centred
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0, 1])), rtol=1e-5, atol=1e-6)
