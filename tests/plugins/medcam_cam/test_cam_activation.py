"""CAM, Eigen-CAM, the random baseline and the FPM readout (medcam_cam.activation)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from medcam.errors import SpecError
from medcam.model import ModelOutput
from cam_probes import build_probe, tiny_cnn_model


def test_cam_is_the_classifier_weighted_sum_of_the_pooled_level():
    """Zhou et al. 2016, eq. 2: M_c = sum_k w_ck A_k (no ReLU), on known activations A = 2x - 1."""
    torch.manual_seed(1)
    model = build_probe(channels=3, classes=4, size=4, scale=2.0, shift=1.0, head="linear")
    images = torch.rand(3, 3, 4, 4)
    targets = [3, 0, 2]
    got = medcam.explain(model, images, "cam", target=targets, raw=True)
    W = model.head.fc.weight.detach().double().numpy()
    acts = (2 * images - 1).double().numpy()
    for i, c in enumerate(targets):
        np.testing.assert_allclose(got[i].double().numpy(), np.tensordot(W[c], acts[i], axes=1), atol=1e-6)
    assert float(got.min()) < 0  # signed: CAM has no ReLU


def test_cam_needs_a_pooling_head_and_its_level():
    images = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="cam_weights"):
        medcam.explain(build_probe(), images, "cam")
    model = tiny_cnn_model()
    with pytest.raises(ValueError, match="level the head pools"):
        medcam.explain(model, torch.rand(1, 3, 64, 64), "cam", layer=2)


def _eigen_reference(acts: np.ndarray, center: bool) -> np.ndarray:
    c, h, w = acts.shape
    matrix = acts.reshape(c, h * w).T
    if center:
        matrix = matrix - matrix.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(matrix, full_matrices=False)
    projection = matrix @ vt[0]
    reference = acts.mean(axis=0).ravel()
    if projection @ (reference - reference.mean()) < 0:
        projection = -projection
    return projection.reshape(h, w)


@pytest.mark.parametrize("center", [False, True])
def test_eigencam_projects_on_the_first_singular_vector(center):
    torch.manual_seed(2)
    model = build_probe(channels=5, classes=2, size=6, scale=2.0, shift=0.5)
    images = torch.rand(3, 5, 6, 6)
    got = medcam.explain(model, images, "eigencam", raw=True, center=center)
    acts = (2 * images - 0.5).double().numpy()
    for i in range(3):
        np.testing.assert_allclose(got[i].double().numpy(), _eigen_reference(acts[i], center), atol=1e-4)


def test_eigencam_is_class_agnostic():
    model = tiny_cnn_model()
    maps = medcam.explain(model, torch.rand(2, 3, 64, 64), "eigencam", target="all")
    torch.testing.assert_close(maps[:, 0], maps[:, 1])
    torch.testing.assert_close(maps[:, 0], maps[:, 2])


def test_random_weights_mode_is_relu_of_a_random_channel_combination():
    torch.manual_seed(4)
    model = build_probe(channels=3, classes=2, size=4, scale=2.0, shift=1.0)
    images = torch.rand(2, 3, 4, 4)
    got = medcam.explain(model, images, "random", seed=7, raw=True)
    generator = torch.Generator().manual_seed(7)
    weights = torch.rand((2, 1, 3), generator=generator) * 2 - 1
    expected = torch.relu(torch.einsum("btc,bchw->bthw", weights, 2 * images - 1))[:, 0]
    torch.testing.assert_close(got, expected)


def test_random_seed_reproducible_and_noise_mode():
    model = tiny_cnn_model()
    images = torch.rand(2, 3, 64, 64)
    a = medcam.explain(model, images, "random", seed=1)
    torch.testing.assert_close(a, medcam.explain(model, images, "random", seed=1))
    assert not torch.equal(a, medcam.explain(model, images, "random", seed=2))
    noise = medcam.explain(model, images, "random", mode="noise", seed=3, raw=True)
    assert noise.shape == (2, 2, 2) and float(noise.min()) >= 0 and float(noise.max()) <= 1
    with pytest.raises(SpecError, match="random.mode"):
        medcam.build_attribution({"name": "random", "mode": "gaussian"})


def test_fpm_reads_the_heads_map_for_each_target():
    torch.manual_seed(5)
    model = build_probe(channels=3, classes=3, size=4, head="fpm")
    images = torch.rand(2, 3, 4, 4)
    fpm = model(images).maps["fpm"]
    raw = medcam.explain(model, images, "fpm", target=[2, 0], raw=True)
    torch.testing.assert_close(raw, torch.stack([fpm[0, 2], fpm[1, 0]]))
    every = medcam.explain(model, images, "fpm", target="all", raw=True)
    torch.testing.assert_close(every, fpm)


def test_fpm_single_channel_map_serves_every_class():
    logits = torch.randn(2, 4)
    fpm = torch.rand(2, 1, 3, 3)
    out = ModelOutput(logits=logits, maps={"fpm": fpm})
    method = medcam.build_attribution("fpm")
    result = method.from_output(out, target=[1, 3], raw=True)
    torch.testing.assert_close(result.maps, fpm[:, 0])


def test_fpm_errors_name_the_missing_map_and_reject_a_layer():
    model = tiny_cnn_model()
    images = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r"output.maps\['fpm'\].*its maps: none"):
        medcam.explain(model, images, "fpm")
    with pytest.raises(ValueError, match="reads no layer"):
        medcam.explain(model, images, "fpm", layer=2)


def test_fem_weights_channels_by_their_k_sigma_outliers():
    """Fuad et al. 2020: w_k = mean 1[A_k > mu_k + k sigma_k] (population sigma), L = sum_k w_k A_k."""
    torch.manual_seed(3)
    model = build_probe(channels=4, classes=2, size=8, scale=2.0, shift=1.0)
    images = torch.rand(2, 4, 8, 8)
    images[:, :, 2, 3] = 3.0                     # an outlier in every channel
    model.input_range = None                     # the probe reads raw values; 3.0 is deliberate
    for k in (1.0, 2.0):
        got = medcam.explain(model, images, "fem", raw=True, k=k)
        acts = (2 * images - 1).double().numpy()
        for i in range(2):
            mu = acts[i].mean(axis=(1, 2), keepdims=True)
            sigma = acts[i].std(axis=(1, 2), keepdims=True)
            weights = (acts[i] > mu + k * sigma).mean(axis=(1, 2))
            np.testing.assert_allclose(got[i].double().numpy(), np.tensordot(weights, acts[i], axes=1), atol=1e-5)


def test_kpcacam_equals_scikit_learns_kernel_pca_up_to_sign():
    """pytorch-grad-cam calls KernelPCA(n_components=1, kernel='sigmoid') on the centred (hw, C) activations."""
    from sklearn.decomposition import KernelPCA

    torch.manual_seed(4)
    model = build_probe(channels=6, classes=2, size=7, scale=0.5, shift=0.1)
    images = torch.rand(2, 6, 7, 7)
    got = medcam.explain(model, images, "kpcacam", raw=True)
    acts = (0.5 * images - 0.1).double().numpy()
    for i in range(2):
        matrix = acts[i].reshape(6, 49).T
        matrix = matrix - matrix.mean(axis=0)
        expected = KernelPCA(n_components=1, kernel="sigmoid", eigen_solver="dense").fit_transform(matrix)[:, 0]
        ours = got[i].double().numpy().ravel()
        sign = 1.0 if ours @ expected >= 0 else -1.0
        np.testing.assert_allclose(sign * ours, expected, rtol=1e-5, atol=1e-7)
        reference = acts[i].sum(axis=0).ravel()
        assert ours @ (reference - reference.mean()) >= 0    # medcam's sign rule
