"""``medcam list``, ``medcam info``, ``medcam build``: output, JSON, errors, and lightness."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import yaml

from medcam.cli import main


def test_list_all_and_kind_and_pattern(cli):
    code, out, _ = cli("list")
    assert code == 0 and "backbones (" in out and "tiny_cnn" in out and "models (" in out
    code, out, _ = cli("list", "backbone", "tiny*")
    assert code == 0 and "channels=[16, 32, 64, 128] strides=[4, 8, 16, 32]" in out
    code, out, _ = cli("list", "tiny*")  # a pattern across every kind
    assert "tiny_cnn" in out and "tiny_classifier" in out
    code, out, _ = cli("list", "losses", "--json")
    rows = json.loads(out)["losses"]
    assert any(r["name"] == "ce" and r["provider"] == "medcam" for r in rows)


def test_list_unknown_kind_with_pattern(cli):
    code, _, err = cli("list", "backbonez", "res*")
    assert code == 2 and err.startswith("error: unknown kind 'backbonez'; did you mean 'backbones'?")


def test_info(cli):
    code, out, _ = cli("info", "tiny_cnn")
    assert code == 0 and "tiny_cnn (backbone)" in out and "strides:   [4, 8, 16, 32]" in out and "width = 16" in out
    code, out, _ = cli("info", "tiny_classifier")
    assert "spec:" in out and "name: tiny_cnn" in out
    code, out, _ = cli("info", "ce", "--json")
    assert json.loads(out)["parameters"] == {"class_weights": None, "label_smoothing": 0.0}


def test_info_unknown_name_is_one_line(cli):
    code, out, err = cli("info", "tiny_cn")
    assert code == 2 and out == ""
    assert err == "error: unknown name 'tiny_cn'; did you mean 'tiny_cnn'? (medcam list)\n"


def test_build_prints_spec_params_and_shapes(tmp_path, cli):
    spec = tmp_path / "m.yaml"
    spec.write_text(yaml.safe_dump({"name": "tiny_classifier", "num_classes": 4}))
    code, out, _ = cli("build", str(spec), "--input-size", "64", "64")
    assert code == 0 and "num_classes: 4" in out and "# logits: [1, 4]" in out
    assert "# features: [[1, 16, 16, 16], [1, 32, 8, 8], [1, 64, 4, 4], [1, 128, 2, 2]]" in out
    code, out, _ = cli("build", "tiny_classifier", "--json")
    data = json.loads(out)
    assert data["outputs"]["logits"] == [1, 2] and data["parameters"] > 0 and data["spec"]["name"] == "tiny_classifier"


def test_build_of_a_training_spec_takes_num_classes_or_class_names(tmp_path, cli):
    train_spec = tmp_path / "train.yaml"  # what medcam train reads: the classes come from the data
    train_spec.write_text(yaml.safe_dump({"backbone": {"name": "tiny_cnn", "width": 8}, "preprocess": {"size": 32}}))
    code, _, err = cli("build", str(train_spec))
    assert code == 2 and "num_classes: missing" in err and "--num-classes" in err
    code, out, _ = cli("build", str(train_spec), "--num-classes", "5", "--json")
    assert code == 0 and json.loads(out)["outputs"]["logits"] == [1, 5]
    named = tmp_path / "named.yaml"
    named.write_text(yaml.safe_dump({"backbone": "tiny_cnn", "class_names": ["1", "3"], "preprocess": {"size": 32}}))
    code, out, _ = cli("build", str(named), "--json")
    assert code == 0 and json.loads(out)["spec"]["num_classes"] == 2
    code, _, err = cli("build", str(named), "--num-classes", "3")
    assert code == 2 and "class_names: 2 names for num_classes=3" in err


def test_build_errors(tmp_path, cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"backbone": {"name": "tiny_cnn", "widht": 8}, "num_classes": 2}))
    code, _, err = cli("build", str(bad))
    assert code == 2 and err.startswith("error: backbone.widht: unknown parameter; did you mean 'width'?")
    code, _, err = cli("build", str(tmp_path / "missing.yaml"))
    assert code == 2 and "does not exist" in err


def test_command_exit_codes_are_kept(monkeypatch):
    import click

    from medcam import cli as cli_module

    @click.command("exit3")
    @click.pass_context
    def exit3(ctx):
        ctx.exit(3)

    monkeypatch.setattr(cli_module, "COMMANDS", {**cli_module.COMMANDS, "exit3": "tests_exit3:exit3"})
    monkeypatch.setitem(sys.modules, "tests_exit3", type(sys)("tests_exit3"))
    sys.modules["tests_exit3"].exit3 = exit3
    with pytest.raises(SystemExit) as err:
        main(["exit3"])
    assert err.value.code == 3


def test_unknown_command_suggests(cli):
    code, _, err = cli("lst")
    assert code == 2 and "no such command 'lst'; did you mean 'list'?" in err


def test_python_dash_m_and_debug_traceback():
    ok = subprocess.run([sys.executable, "-m", "medcam", "list", "models", "--names-only"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "tiny_classifier" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "medcam", "--debug", "info", "nope_nope"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" in bad.stderr and "UnknownNameError" in bad.stderr


HEAVY = ("torch", "timm", "segmentation_models_pytorch", "triton", "einops", "mamba_ssm")


@pytest.mark.parametrize("argv", [["list"], ["list", "backbones"], ["info", "tiny_cnn"], ["info", "tiny_classifier"]])
def test_list_and_info_import_no_model_code(argv):
    code = textwrap.dedent(f"""
        import sys
        from medcam.cli import main
        try:
            main({argv!r})
        except SystemExit:
            pass
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})
        plugin = sorted(m for m in sys.modules if m.startswith('medcam_') and '.' in m)
        print('LOADED', heavy)
        print('PLUGIN', plugin)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    # every model module imports torch: with torch absent, no model code was imported
    assert lines[-2] == "LOADED []", lines[-2]
    assert "medcam_basic.entries" in lines[-1]  # the light modules themselves were read
