from __future__ import annotations

import pytest
from medcam_data_trees import noise_image, rect_mask, save_png

from medcam.data.busi import BUSI
from medcam.data.factory import build_dataset, dataset_names, dataset_options, detect_layout, parse_options
from medcam.data.folder import ImageFolder
from medcam.data.masks import MaskFolder
from medcam.data.nih import NIHChestXray
from medcam.data.wsol import WSOLList
from medcam.errors import DataError, SpecError, UnknownNameError


def test_names_and_options():
    assert {"busi", "imagefolder", "masks", "nih", "wsol_list"} <= set(dataset_names())
    opts = dataset_options("nih")
    assert opts["task"] == "multilabel" and opts["on_error"] == "raise" and "preprocess" in opts
    assert "records" not in opts and "policy" not in opts


def test_detect_and_build_each_layout(busi_tree, nih_tree, tmp_path):
    save_png(tmp_path / "folder" / "train" / "a" / "x.png", noise_image(8, 8, seed=0))
    save_png(tmp_path / "folder" / "train" / "b" / "y.png", noise_image(8, 8, seed=1))
    save_png(tmp_path / "seg" / "images" / "x.png", noise_image(8, 8, seed=0))
    save_png(tmp_path / "seg" / "masks" / "x.png", rect_mask(8, 8, (1, 1, 3, 3)))
    save_png(tmp_path / "wsol" / "test" / "a" / "x.png", noise_image(8, 8, seed=0))
    (tmp_path / "wsol" / "test_list.txt").write_text("a/x.png;0\n")
    (tmp_path / "wsol" / "test_gt.txt").write_text("a/x.png 8 8;1 1 4 4\n")
    cases = [(busi_tree, "busi", BUSI), (nih_tree, "nih", NIHChestXray), (tmp_path / "folder", "imagefolder", ImageFolder),
             (tmp_path / "seg", "masks", MaskFolder), (tmp_path / "wsol", "wsol_list", WSOLList)]
    for root, name, cls in cases:
        assert detect_layout(root) == name
        assert type(build_dataset(None, root, preprocess={"size": 8})) is cls
        assert type(build_dataset(name, root, check="none")) is cls


def test_aliases_close_matches_and_unknown_options(busi_tree):
    assert isinstance(build_dataset("Image-Folder", busi_tree, class_names=["normal", "benign", "malignant"]),
                      ImageFolder)
    with pytest.raises(UnknownNameError, match="unknown dataset layout 'bussi'; did you mean 'busi'"):
        build_dataset("bussi", busi_tree)
    with pytest.raises(SpecError, match="dataset option 'on_eror': unknown for the 'busi' layout; did you mean 'on_error'"):
        build_dataset("busi", busi_tree, on_eror="skip")


def test_undetectable_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="cannot tell the data set layout"):
        detect_layout(tmp_path / "x")


def test_parse_options():
    assert parse_options(["task=effusion", "val=0.2", "class_names=[a, b]", "cache_dir="]) == {
        "task": "effusion", "val": 0.2, "class_names": ["a", "b"], "cache_dir": ""}
    with pytest.raises(SpecError, match="expected KEY=VALUE"):
        parse_options(["task"])


def test_layouts_are_the_datasets_registry_and_a_third_party_adds_one(busi_tree, tmp_path, monkeypatch):
    """A layout declared by another distribution's entry point (group medcam.datasets) is built by name."""
    import importlib.metadata as md
    import textwrap

    from medcam.registry import datasets, get_registry

    assert get_registry("dataset") is datasets and datasets.group == "medcam.datasets"
    assert datasets.entry("busi").value == "medcam.data.layouts:busi" and datasets.entry("busi").provider == "medcam"
    assert "ChestX-ray14" in datasets.info("nih")["summary"] and "Wang" in datasets.info("nih")["citation"]
    (tmp_path / "acme_layouts.py").write_text(textwrap.dedent('''
        from medcam.data.folder import ImageFolder
        from medcam.data.layouts import DatasetLayout

        class AcmeFolder(ImageFolder):
            """Acme's scans: an image folder under another name."""

        acme = DatasetLayout("acme_layouts:AcmeFolder", "Acme's scans")
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    info = tmp_path / "meta" / "acme_layouts-1.0.dist-info"  # not on sys.path: only the source below sees it
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-layouts\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[medcam.datasets]\nacme = acme_layouts:acme\n")
    bundled = list(md.entry_points(group="medcam.datasets"))
    third = [ep for ep in md.PathDistribution(info).entry_points if ep.group == "medcam.datasets"]
    datasets.use_entry_points(lambda: bundled + third)
    try:
        assert "acme" in dataset_names() and datasets.entry("acme").provider == "acme-layouts"
        built = build_dataset("ACME", busi_tree, class_names=["normal", "benign", "malignant"])
        assert type(built).__name__ == "AcmeFolder" and len(built) >= 12
        with pytest.raises(UnknownNameError, match="did you mean 'acme'.*medcam list datasets"):
            build_dataset("acmee", busi_tree)
    finally:
        datasets.use_entry_points(None)
    assert "acme" not in dataset_names()
