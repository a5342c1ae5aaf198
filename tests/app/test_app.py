"""medcam.app without its extra: importing works, using it says how to install Gradio."""
from __future__ import annotations

import subprocess
import sys

import pytest

from medcam.cli import main


def test_imports_do_not_need_gradio():
    """In a fresh interpreter where ``import gradio`` fails, the app package and the commands still import
    (and neither pulls in torch: ``medcam --help`` stays fast)."""
    code = ("import sys; sys.modules['gradio'] = None\n"
            "import medcam.app, medcam.cli.explain_commands, medcam.inference\n"
            "print(sorted(m for m in ('gradio', 'torch') if sys.modules.get(m) is not None))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_extra_is_a_clear_error(monkeypatch):
    from medcam.app import AppDependencyError, require_gradio

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(AppDependencyError, match=r"pip install 'medcam\[app\]'"):
        require_gradio()


def test_app_command_without_the_extra_exits_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(SystemExit) as stop:
        main(["app", str(tmp_path / "model.pt")])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith("error: medcam app needs the [app] extra (Gradio): pip install 'medcam[app]'")
    assert len(err.strip().splitlines()) == 1


def test_old_gradio_is_refused(monkeypatch):
    import types

    from medcam.app import AppDependencyError, require_gradio

    monkeypatch.setitem(sys.modules, "gradio", types.SimpleNamespace(__version__="4.44.1"))
    with pytest.raises(AppDependencyError, match="needs gradio>=6, found 4.44.1"):
        require_gradio()


def test_upload_errors_name_the_file_not_the_server_copy():
    from medcam.app.gradio_app import upload_error
    from medcam.errors import DataError

    server = "/tmp/gradio/0123abcd/scan (1).png"
    err = DataError(f"{server}: not a readable image (cannot identify image file '{server}')")
    assert upload_error(err, server, "scan (1).png") == \
        "scan (1).png: not a readable image (cannot identify image file 'scan (1).png')"
    assert upload_error(RuntimeError("out of memory"), server, "scan (1).png") == \
        "scan (1).png: RuntimeError: out of memory"
