"""open_segmenter: checkpoints, spec files, registered names and spec mappings; one-line errors."""
from __future__ import annotations

import pytest

import medcam
from medcam.errors import CheckpointError, SpecError, UnknownNameError
from medcam.model import MedcamSegmenter
from medcam.segmenter_source import open_segmenter


def test_every_form_gives_a_segmenter(tmp_path):
    by_name = open_segmenter("lung_fields")
    assert isinstance(by_name, MedcamSegmenter) and not by_name.training
    assert by_name.spec["segmenter"]["name"] == "lung_fields"
    spec_file = tmp_path / "lungs.yaml"
    spec_file.write_text("name: lung_fields\nin_chans: 1\nwork_size: 128\n")
    from_file = open_segmenter(spec_file)
    assert from_file.in_chans == 1 and from_file.spec["segmenter"]["work_size"] == 128
    saved = medcam.save(from_file, tmp_path / "lungs.pt")
    loaded = open_segmenter(str(saved))
    assert loaded.spec == from_file.spec
    assert open_segmenter(loaded) is loaded
    assert open_segmenter({"name": "lung_fields", "temperature": 4.0}).spec["segmenter"]["temperature"] == 4.0


def test_errors_name_the_option(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'lung_fields'"):
        open_segmenter("lungs_fields")
    with pytest.raises(FileNotFoundError, match="--segmenter: checkpoint '.*missing.pt' does not exist"):
        open_segmenter(str(tmp_path / "missing.pt"), what="--segmenter")
    with pytest.raises(FileNotFoundError, match="does not exist .*segmenter name such as lung_fields"):
        open_segmenter(str(tmp_path / "no" / "model"))
    with pytest.raises(SpecError, match="a sha256 checks a checkpoint file"):
        open_segmenter("lung_fields", sha256="0" * 64)
    with pytest.raises(SpecError, match="expected a checkpoint path, a segmenter name or spec"):
        open_segmenter(3)
    model = medcam.save(medcam.build_model("tiny_classifier"), tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="holds a classifier, not a segmenter"):
        open_segmenter(model)
