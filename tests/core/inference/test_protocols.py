"""The dental screener's answer format, byte for byte on its README's documented example."""
from __future__ import annotations

import json

from medcam.inference.protocols import DENTAL_KEYS, dental_answer, encode

#: From the screener's README ("Fully Working Model", "Output JSON"), copied verbatim.
DOCUMENTED_ANSWER = ('{"result": "ok", "diagnosis": "Healthy Patient", "saliency_img_path": '
                     '"/d01/scholles/gigasistemica/gigacandanga_exec/outputs/BrunoScholles-Radiography_saliency_'
                     '20240212162822.png", "overlay_img_path": "/d01/scholles/gigasistemica/gigacandanga_exec/outputs/'
                     'BrunoScholles-Radiography_overlay_20240212162822.png"}')
#: What its run_model.py prints for a request it could not serve.
FAIL_ANSWER = '{"result": "fail", "diagnosis": "", "saliency_img_path": "", "overlay_img_path": ""}'
DESTINATION = "/d01/scholles/gigasistemica/gigacandanga_exec/outputs"


def _record(**changes):
    record = {"result": "ok", "image": "/scans/BrunoScholles-Radiography.jpg", "diagnosis": "Healthy Patient",
              "saliency_path": f"{DESTINATION}/BrunoScholles-Radiography_saliency_20240212162822.png",
              "overlay_path": f"{DESTINATION}/BrunoScholles-Radiography_overlay_20240212162822.png",
              "warnings": [], "error": None}
    record.update(changes)
    return record


def test_the_documented_answer_byte_for_byte():
    assert encode(dental_answer(_record(), DESTINATION)) == DOCUMENTED_ANSWER
    assert tuple(json.loads(DOCUMENTED_ANSWER)) == DENTAL_KEYS


def test_fail_answer_and_destination_as_written():
    assert encode(dental_answer({"result": "fail", "error": "x"}, DESTINATION)) == FAIL_ANSWER
    # os.path.join with the destination as the request wrote it (medcam itself normalizes paths)
    answer = dental_answer(_record(saliency_path="out/a_saliency_1.png", overlay_path="out/a_overlay_1.png"), "./out/")
    assert answer["saliency_img_path"] == "./out/a_saliency_1.png" and answer["overlay_img_path"] == "./out/a_overlay_1.png"


def test_non_ascii_names_are_escaped_as_json_dumps_does():
    line = encode(dental_answer(_record(diagnosis="Osso Saudável"), DESTINATION))
    assert '"diagnosis": "Osso Saud\\u00e1vel"' in line
