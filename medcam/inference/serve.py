"""The stdin/stdout JSON-lines service (``medcam explain CHECKPOINT --serve``).

Like the dental screener's ``run_model.py``: the model is loaded once, then
every input line is one request and gets exactly one answer line, flushed at
once, so another program can drive it through a pipe::

    -> {"img_path": "scan.png", "destination_path": "out/"}
    <- {"result": "ok", "image": "scan.png", "diagnosis": ..., "saliency_path": "out/scan_saliency_....png", ...}

Request keys: ``img_path`` (required), ``destination_path`` (folder for the
PNGs; default the ``--out`` folder), and optionally ``method``, ``target``,
``threshold``, ``mask_threshold`` and ``id`` (echoed back). Blank lines are
skipped. A line that is not a JSON object, lacks ``img_path`` or has unknown
keys gets a ``fail`` answer saying so; so does a line longer than
:data:`medcam.limits.MAX_REQUEST_CHARS` (read and dropped in pieces, never
held whole) and JSON nested too deeply to parse. The service goes on until
end of input.

``protocol="dental"`` answers in the dental screener's format instead
(:mod:`medcam.inference.protocols`): four keys, byte for byte as its
``run_model.py``; reasons for failures and warnings go to ``stderr``.
"""
from __future__ import annotations

import json
from typing import IO, Any, Iterator

from ..limits import MAX_REQUEST_CHARS
from .protocols import PROTOCOLS, dental_answer, encode
from .record import fail_record

__all__ = ["serve", "handle_request", "request_lines", "REQUEST_KEYS"]

#: Keys a request may carry.
REQUEST_KEYS: tuple[str, ...] = ("img_path", "destination_path", "method", "target", "threshold", "mask_threshold",
                                 "id")


def _bad(reason: str, request_id: Any = None) -> dict[str, Any]:
    record = fail_record(None, f"malformed request: {reason}")
    if request_id is not None:
        record["id"] = request_id
    return record


def handle_request(explainer: Any, line: str, default_out: str | None) -> dict[str, Any]:
    """Answer one request line (see the module docstring); never raises for bad input."""
    from ..registry import did_you_mean

    try:
        request = json.loads(line)
    except json.JSONDecodeError as err:
        return _bad(f"not valid JSON ({err.msg} at column {err.colno})")
    except RecursionError:
        return _bad("JSON nested too deeply")
    if not isinstance(request, dict):
        return _bad(f"expected a JSON object like {{\"img_path\": ..., \"destination_path\": ...}}, "
                    f"got {type(request).__name__}")
    request_id = request.get("id")
    unknown = sorted(set(request) - set(REQUEST_KEYS))
    if unknown:
        return _bad(f"unknown key '{unknown[0]}'{did_you_mean(unknown[0], REQUEST_KEYS)} "
                    f"(keys: {', '.join(REQUEST_KEYS)})", request_id)
    path = request.get("img_path")
    if not isinstance(path, str) or not path:
        return _bad("'img_path' (a file path string) is required", request_id)
    out = request.get("destination_path", default_out)
    if out is not None and not isinstance(out, str):
        return _bad("'destination_path' must be a folder path string", request_id)
    for key in ("threshold", "mask_threshold"):
        value = request.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 <= value <= 1):
            return _bad(f"'{key}' must be a number in [0, 1], got {value!r}", request_id)
    for key in ("method", "target"):
        value = request.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            return _bad(f"'{key}' must be a {'name' if key == 'method' else 'class name or index'}, got {value!r}",
                        request_id)
    options = {k: request[k] for k in ("method", "target", "threshold", "mask_threshold") if request.get(k) is not None}
    record = explainer.run(path, out, **options)
    if request_id is not None:
        record["id"] = request_id
    return record


def request_lines(stdin: IO[str], limit: int = MAX_REQUEST_CHARS) -> Iterator[str | None]:
    """The lines of ``stdin`` (with their newline); None for a line longer than ``limit`` characters,
    whose text is read and dropped ``limit`` characters at a time."""
    while True:
        line = stdin.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith("\n"):
            while True:
                rest = stdin.readline(limit)
                if not rest or rest.endswith("\n"):
                    break
            yield None
        else:
            yield line


def _destination(line: str | None, default_out: str | None) -> str | None:
    """The folder a request's pictures went to, as the request wrote it."""
    try:
        request = json.loads(line or "")
    except (ValueError, RecursionError):  # not JSON, or nested too deeply: the request failed anyway
        return default_out
    value = request.get("destination_path", default_out) if isinstance(request, dict) else default_out
    return value if isinstance(value, str) else default_out


def serve(explainer: Any, stdin: IO[str], stdout: IO[str], default_out: str | None = None, *,
          protocol: str = "medcam", stderr: IO[str] | None = None) -> int:
    """Answer requests from ``stdin`` on ``stdout`` until end of input.

    Args:
        protocol: ``"medcam"`` (full records) or ``"dental"`` (the dental screener's answers).
        stderr: where the dental protocol writes failure reasons and warnings (default: nowhere).

    Returns:
        the number of requests answered.
    """
    if protocol not in PROTOCOLS:
        from ..registry import did_you_mean

        raise ValueError(f"protocol: unknown answer format {protocol!r}{did_you_mean(str(protocol), PROTOCOLS)} "
                         f"(formats: {', '.join(PROTOCOLS)})")
    answered = 0
    for line in request_lines(stdin):
        if line is None:
            record = _bad(f"request line longer than {MAX_REQUEST_CHARS:,} characters; skipped")
        elif not line.strip():
            continue
        else:
            record = handle_request(explainer, line, default_out)
        if protocol == "dental":
            answer: dict[str, Any] = dental_answer(record, _destination(line, default_out))
            notes = [f"fail: {record['error']}"] if record["result"] != "ok" else list(record.get("warnings") or ())
            if stderr is not None:
                for note in notes:
                    stderr.write(f"medcam: {record.get('image')}: {note}\n")
                stderr.flush()
        else:
            answer = record
        stdout.write(encode(answer) + "\n")
        stdout.flush()
        answered += 1
    return answered
