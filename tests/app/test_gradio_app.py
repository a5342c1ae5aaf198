"""The web app for real: ``medcam app`` in its own process on 127.0.0.1, driven by headless Chromium.

Needs the [app] extra (gradio), selenium (dev extra) and Debian's ``chromium``
and ``chromium-driver`` packages (``.ci/run`` installs them); skips with the
reason otherwise. A BUSI image is uploaded; the test waits until the page
shows the predicted class (computed independently here) and both overlays
(attribution and segmentation mask) at the image's own size, then saves a
screenshot: to the test's tmp folder, and to docs/app_screenshot.png when
``MEDCAM_UPDATE_SCREENSHOT=1``. ``MEDCAM_APP_TEST_CHECKPOINT`` /
``MEDCAM_APP_TEST_SEGMENTER`` replace the tiny untrained models by trained ones
and ``MEDCAM_APP_TEST_IMAGE`` picks the BUSI image (that is how the docs
screenshot is made, see docs/app.md).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MEDCAM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MEDCAM_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--window-size=1400,1050")
STARTUP_SECONDS = 240  # importing torch + gradio on a loaded 2-core CI machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser_tools():
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(path)):
            pytest.skip(f"{path} not found: install Debian's {package} (apt-get install -y chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")
    pytest.importorskip("gradio", reason="the [app] extra is not installed (pip install -e '.[app]')")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    """(classifier, segmenter): from the environment, or tiny untrained models saved with medcam.save."""
    given = os.environ.get("MEDCAM_APP_TEST_CHECKPOINT"), os.environ.get("MEDCAM_APP_TEST_SEGMENTER")
    if all(given):
        return Path(given[0]), Path(given[1])
    import torch

    import medcam

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("app_models")
    model = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3,
                                "class_names": ["normal", "benign", "malignant"], "preprocess": {"size": 64}})
    seg = medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4},
                                  "preprocess": {"size": 64}})
    return medcam.save(model, root / "model.pt"), medcam.save(seg, root / "seg.pt")


@pytest.fixture(scope="module")
def app_url(browser_tools, checkpoints, tmp_path_factory):
    """``medcam app`` started as a user would, on a free port of 127.0.0.1; stopped afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("app_log") / "app.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, "-m", "medcam", "app", str(checkpoints[0]), "--segmenter", str(checkpoints[1]),
           "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=tmp_path_factory.mktemp("cwd"))
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"medcam app exited with status {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"medcam app did not answer on {url} within {STARTUP_SECONDS}s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@pytest.fixture()
def driver(browser_tools, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}")
    service = Service(executable_path=CHROMEDRIVER if Path(CHROMEDRIVER).is_file() else shutil.which(CHROMEDRIVER))
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_page_load_timeout(120)
    yield browser
    browser.quit()


def _busi_image(busi_dir: Path) -> Path:
    """``MEDCAM_APP_TEST_IMAGE`` (a file name under busi/benign or busi/malignant, or a path), else the first benign image."""
    chosen = os.environ.get("MEDCAM_APP_TEST_IMAGE")
    if chosen:
        for candidate in (Path(chosen), busi_dir / "benign" / chosen, busi_dir / "malignant" / chosen):
            if candidate.is_file():
                return candidate
        pytest.fail(f"MEDCAM_APP_TEST_IMAGE={chosen!r} is not a file (nor under {busi_dir}/benign or /malignant)")
    return sorted(p for p in (busi_dir / "benign").glob("*.png") if "_mask" not in p.name)[0]


def _expected(checkpoint: Path, image: Path) -> tuple[str, list[float], tuple[int, int]]:
    """Predicted class, probabilities and (width, height), computed here without the app."""
    from PIL import Image

    import medcam
    from medcam.data import preprocess_image

    model = medcam.load(checkpoint)
    probs = model.predict_proba(preprocess_image(image, model.spec).image)[0]
    with Image.open(image) as img:
        size = img.size
    return model.class_names[int(probs.argmax())], probs.tolist(), size


def _image_width(browser, element_id: str) -> int:
    return int(browser.execute_script(
        "const img = document.querySelector('#' + arguments[0] + ' img');"
        "return img && img.complete ? img.naturalWidth : 0;", element_id))


def test_upload_shows_class_and_both_overlays(app_url, driver, checkpoints, busi_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    image = _busi_image(busi_dir)
    label, probs, (width, _) = _expected(checkpoints[0], image)
    driver.get(app_url)
    wait = WebDriverWait(driver, 180, poll_frequency=0.25)
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#medcam-input input[type=file]"))
    upload.send_keys(str(image))

    def shown(browser):
        lines = [t.strip() for t in browser.find_element(By.ID, "medcam-label").text.splitlines() if t.strip()]
        widths = [_image_width(browser, "medcam-overlay"), _image_width(browser, "medcam-mask")]
        return (lines, widths) if len(lines) > 1 and all(widths) else False

    lines, widths = wait.until(shown)
    assert lines[1] == label, f"the page shows {lines[1]!r}, the model predicts {label!r}"
    assert f"{round(max(probs) * 100)}%" in lines  # the confidence of the top class
    assert widths == [width, width], "both overlays are drawn on the uploaded image, at its own size"
    assert "box" in driver.find_element(By.ID, "medcam-boxes").text
    shot = tmp_path / "app_screenshot.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("MEDCAM_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "app_screenshot.png")


def test_method_choice_and_json_download(app_url, checkpoints, busi_dir, tmp_path):
    """The page's API (what the browser calls) with another method: the JSON download follows the schema."""
    client_module = pytest.importorskip("gradio_client")
    jsonschema = pytest.importorskip("jsonschema")
    image = _busi_image(busi_dir)
    label, _, (width, height) = _expected(checkpoints[0], image)
    client = client_module.Client(app_url, verbose=False, download_files=str(tmp_path))
    outputs = client.predict(client_module.handle_file(str(image)), "gradcam++", 0.5, 0.5, "layercam",
                             api_name="/analyse")
    download = outputs[-1]
    path = download["value"] if isinstance(download, dict) else download
    record = json.loads(Path(path).read_text())
    schema = json.loads((REPO / "docs" / "explain.schema.json").read_text())
    jsonschema.validate(record, schema)
    assert record["result"] == "ok" and record["method"] == "gradcam++" and record["diagnosis"] == label
    assert record["image"] == image.name and record["image_size"] == [height, width]
    assert record["box_source"] == "segmenter" and record["saliency_path"] is None
    assert record["segmenter_method"] == "layercam" and record["segmenter_map_path"] is None  # shown, not written
