"""Bad uploads to the web app: each gets medcam's one-line reason with the file's own name, never Gradio's
"Could not preprocess input" nor a path on the server; a good upload afterwards is still answered.

The app runs in this process on a free port of 127.0.0.1 and is driven through its HTTP API (what the
page calls), with gradio_client; the browser test is tests/app/test_gradio_app.py.
"""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from _reliability import header_only_png, write_png

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    pytest.importorskip("gradio", reason="the [app] extra is not installed (pip install -e '.[app]')")
    client_module = pytest.importorskip("gradio_client", reason="gradio_client is not installed")
    import medcam
    from medcam.app import launch
    from medcam.inference import Explainer

    from _reliability import TINY_SPEC

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    explainer = Explainer(medcam.build_model(TINY_SPEC))
    blocks = launch(explainer, port=port, block=False)
    try:
        client = client_module.Client(f"http://127.0.0.1:{port}/", verbose=False,
                                      download_files=str(tmp_path_factory.mktemp("downloads")))
        yield client, client_module
    finally:
        blocks.close()


def _ask(app, path: Path):
    client, module = app
    return client.predict(module.handle_file(str(path)), "gradcam", 0.5, 0.5, api_name="/analyse")


UPLOADS = [
    pytest.param(lambda p: (p.write_text("hello"), p)[1], "not a readable image", id="text-file"),
    pytest.param(lambda p: header_only_png(p, 9000, 9000), "more than the limit", id="over-pixel-limit"),
    pytest.param(lambda p: header_only_png(p, 30000, 30000), "more than the limit", id="decompression-bomb"),
    pytest.param(lambda p: write_png(p, 6, 400), "wrong size", id="too-thin"),
]


@pytest.mark.parametrize("make, fragment", UPLOADS)
def test_bad_upload_gets_medcams_reason_without_server_paths(app, tmp_path, make, fragment):
    path = make(tmp_path / "upload scan.png")
    with pytest.raises(Exception) as caught:
        _ask(app, path)
    message = str(caught.value)
    assert fragment in message, message
    assert message.startswith("upload scan.png: "), message
    assert "Could not preprocess" not in message and "/tmp" not in message and "gradio" not in message.lower()
    ok = _ask(app, write_png(tmp_path / "good.png", 80, 96))  # the app goes on
    assert ok[0]["label"] in ("normal", "benign", "malignant")


def test_a_long_running_app_deletes_its_old_temporary_files(tmp_path):
    """Uploads and served pictures older than APP_FILE_LIFETIME_S are deleted, checked twice per lifetime."""
    pytest.importorskip("gradio", reason="the [app] extra is not installed (pip install -e '.[app]')")
    import medcam
    from medcam.app import build_app
    from medcam.inference import Explainer
    from medcam.limits import APP_FILE_LIFETIME_S

    from _reliability import TINY_SPEC

    blocks = build_app(Explainer(medcam.build_model(TINY_SPEC)), work_dir=tmp_path)
    assert blocks.delete_cache == (APP_FILE_LIFETIME_S // 2, APP_FILE_LIFETIME_S)
