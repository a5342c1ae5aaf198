"""Soak test: ``medcam explain --serve`` and ``medcam app`` under a bounded loop of mixed good and bad requests.

Each service runs as its own process on this machine (the app on 127.0.0.1)
for ``--minutes``; requests are drawn, seeded, from a fixed menu of good
images and bad inputs (missing, empty, not an image, truncated, over the pixel
limit, a decompression-bomb header, a huge-but-allowed image, too thin; for
``--serve`` also malformed JSON, unknown keys, bad values, a 2 MB line, JSON
nested 100,000 deep, a destination that is a file). Every request must get
exactly one answer of the expected kind: ``ok`` for good ones, a failure with
the expected reason for bad ones (in the app: an error without a server path
or "Could not preprocess"). The service's resident memory is sampled every
few seconds from ``/proc``; its peak is the kernel's ``VmHWM``.

Example (the numbers in docs/guarantees.md)::

    OMP_NUM_THREADS=1 python benchmarks/soak.py --minutes 10 --mode serve --data ../shared/data/busi
    OMP_NUM_THREADS=1 python benchmarks/soak.py --minutes 10 --mode app --data ../shared/data/busi

Prints one table per service; exit status 1 if any request got no answer or an unexpected one.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench_inputs import default_checkpoint, disc_image, header_only_png  # next to this script


# ---------------------------------------------------------------------- inputs
@dataclass
class Case:
    """One kind of request: its name, what to send, and what the answer must say."""

    name: str
    good: bool
    path: Path | None = None
    line: str | None = None       # --serve: the raw request line (overrides path)
    expect: str = ""              # a fragment of the failure reason


def make_cases(root: Path, good_images: list[Path]) -> tuple[list[Case], list[Case]]:
    """(file cases for both services, line cases for --serve only)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("not an image")
    truncated = disc_image(root / "truncated.png", 300, 300)
    truncated.write_bytes(truncated.read_bytes()[:200])
    blocker = root / "a_file"
    blocker.write_text("x")
    files = [Case(f"good {p.name}", True, p) for p in good_images]
    files += [
        Case("huge but allowed (6000 x 6000, 36 Mpx)", True, disc_image(root / "huge.png", 6000, 6000)),
        Case("missing file", False, root / "missing.png", expect="image file not found"),
        Case("empty file", False, root / "empty.png", expect="empty file"),
        Case("text named .png", False, root / "text.png", expect="not a readable image"),
        Case("truncated png", False, truncated, expect="corrupt image data"),
        Case("over the pixel limit (9000 x 9000 header)", False, header_only_png(root / "over.png", 9000, 9000),
             expect="more than the limit"),
        Case("decompression bomb (30000 x 30000 header)", False, header_only_png(root / "bomb.png", 30000, 30000),
             expect="more than the limit"),
        Case("too thin (6 x 400)", False, disc_image(root / "thin.png", 6, 400), expect="wrong size"),
    ]
    good = str(good_images[0])
    lines = [
        Case("not JSON", False, line="{not json", expect="not valid JSON"),
        Case("unknown key", False, line=json.dumps({"img_pth": good}), expect="did you mean 'img_path'"),
        Case("threshold out of range", False, line=json.dumps({"img_path": good, "threshold": 7}),
             expect="'threshold' must be a number"),
        Case("unknown method", False, line=json.dumps({"img_path": good, "method": "gradcma"}),
             expect="did you mean 'gradcam'"),
        Case("2 MB line", False, line=json.dumps({"img_path": good, "id": "x" * 2_000_000}), expect="longer than"),
        Case("JSON nested 100,000 deep", False, line="[" * 100_000 + "]" * 100_000, expect="nested too deeply"),
        Case("destination is a file", False, line=json.dumps({"img_path": good, "destination_path": str(blocker)}),
             expect="is a file, not a folder"),
    ]
    return files, lines


# ---------------------------------------------------------------------- bookkeeping
def _status(pid: int, key: str) -> float:
    """``VmRSS`` / ``VmHWM`` of a process, in MB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    ok: int = 0
    failures_answered: int = 0
    unexpected: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (elapsed s, MB)
    peak_mb: float = 0.0
    disk_mb: float | None = None  # the app's temporary files (uploads, pictures, JSON) at the end
    by_case: dict[str, int] = field(default_factory=dict)

    def record(self, case: Case, answered: bool, ok: bool, reason: str, seconds: float) -> None:
        self.sent += 1
        self.by_case[case.name] = self.by_case.get(case.name, 0) + 1
        if not answered:
            self.unexpected.append(f"{case.name}: no answer ({reason})")
            return
        self.answered += 1
        self.seconds.append(seconds)
        if case.good and ok:
            self.ok += 1
        elif not case.good and not ok and case.expect in reason:
            self.failures_answered += 1
        else:
            self.unexpected.append(f"{case.name}: {'ok' if ok else 'fail'}: {reason[:200]}")

    def by_minute(self) -> str:
        """The largest resident MB sampled in each minute, in order: whether memory creeps or settles."""
        peaks: dict[int, float] = {}
        for t, mb in self.rss:
            peaks[int(t // 60)] = max(mb, peaks.get(int(t // 60), 0.0))
        return " ".join(f"{peaks[m]:.0f}" for m in sorted(peaks))

    def report(self, title: str, minutes: float) -> str:
        secs = sorted(self.seconds) or [0.0]
        p95 = secs[min(len(secs) - 1, int(0.95 * len(secs)))]
        first = [mb for t, mb in self.rss if t <= 60] or [0.0]
        last = [mb for t, mb in self.rss if t >= self.rss[-1][0] - 60] if self.rss else [0.0]
        rows = [
            ("requests sent", f"{self.sent}"),
            ("answered", f"{self.answered}"),
            ("ok (good requests)", f"{self.ok}"),
            ("failures answered as expected (bad requests)", f"{self.failures_answered}"),
            ("unexpected or unanswered", f"{len(self.unexpected)}"),
            ("answer time median / p95 / max (s)", f"{statistics.median(secs):.2f} / {p95:.2f} / {secs[-1]:.2f}"),
            ("resident MB, first minute (max)", f"{max(first):.0f}"),
            ("resident MB, last minute (max)", f"{max(last):.0f}"),
            ("peak resident MB (VmHWM)", f"{self.peak_mb:.0f}"),
        ]
        if self.disk_mb is not None:
            rows.append(("temporary files at the end (MB)", f"{self.disk_mb:.0f}"))
        width = max(len(k) for k, _ in rows)
        out = [f"{title}: {minutes:g} minutes"] + [f"  {k:<{width}}  {v}" for k, v in rows]
        out += [f"  unexpected: {u}" for u in self.unexpected[:10]]
        return "\n".join(out)


def _sampler(pid: int, tally: Tally, began: float, stop: threading.Event) -> None:
    while not stop.is_set():
        mb = _status(pid, "VmRSS")
        if mb:
            tally.rss.append((time.monotonic() - began, mb))
        stop.wait(2.0)


# ---------------------------------------------------------------------- the services
def soak_serve(checkpoint: str, files: list[Case], lines: list[Case], minutes: float, rng: random.Random,
               work: Path, timeout: float) -> Tally:
    cmd = [sys.executable, "-m", "medcam", "explain", checkpoint, "--serve", "--out", str(work / "serve_out")]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, bufsize=1)
    answers: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [answers.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore
    tally, stop = Tally(), threading.Event()
    began = time.monotonic()
    threading.Thread(target=_sampler, args=(proc.pid, tally, began, stop), daemon=True).start()
    menu = files + lines
    try:
        while time.monotonic() - began < minutes * 60:
            case = rng.choice(menu)
            line = case.line if case.line is not None else json.dumps({"img_path": str(case.path)})
            sent = time.monotonic()
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            try:
                answer = json.loads(answers.get(timeout=timeout))
            except queue.Empty:
                tally.record(case, False, False, f"nothing within {timeout:.0f} s", 0.0)
                break
            tally.record(case, True, answer["result"] == "ok", answer.get("error") or "", time.monotonic() - sent)
    finally:
        tally.peak_mb = _status(proc.pid, "VmHWM")
        stop.set()
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return tally


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def soak_app(checkpoint: str, files: list[Case], minutes: float, rng: random.Random, work: Path,
             timeout: float) -> Tally:
    from gradio_client import Client, handle_file

    port = _free_port()
    temp = work / "app_tmp"  # the app's temporary folder: Gradio's upload/picture cache and the JSON files
    temp.mkdir()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(temp)}
    proc = subprocess.Popen([sys.executable, "-m", "medcam", "app", checkpoint, "--host", "127.0.0.1", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=work)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"medcam app did not start on {url}")
            time.sleep(1)
    client = Client(url, verbose=False, download_files=str(work / "downloads"))
    tally, stop = Tally(), threading.Event()
    began = time.monotonic()
    threading.Thread(target=_sampler, args=(proc.pid, tally, began, stop), daemon=True).start()
    try:
        while time.monotonic() - began < minutes * 60:
            case = rng.choice([c for c in files if c.name != "missing file"])  # an upload needs a file
            sent = time.monotonic()
            job = client.submit(handle_file(str(case.path)), "gradcam", 0.5, 0.5, api_name="/analyse")
            try:
                job.result(timeout=timeout)
                tally.record(case, True, True, "", time.monotonic() - sent)
            except TimeoutError:
                tally.record(case, False, False, f"nothing within {timeout:.0f} s", 0.0)
                break
            except Exception as err:  # the app's gr.Error arrives as an exception carrying its message
                reason = str(err)
                leaked = "/tmp" in reason or "Could not preprocess" in reason
                tally.record(case, True, False, ("LEAKED " if leaked else "") + reason, time.monotonic() - sent)
    finally:
        tally.peak_mb = _status(proc.pid, "VmHWM")
        tally.disk_mb = sum(f.stat().st_size for f in temp.rglob("*") if f.is_file()) / 2 ** 20
        stop.set()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--mode", choices=("serve", "app", "both"), default="both")
    parser.add_argument("--checkpoint", help="a classifier checkpoint (default: an untrained ResNet-18 at 224 px)")
    parser.add_argument("--data", help="a folder whose images (first 20, masks left out) are the good requests "
                                       "(default: generated 500 x 600 images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one answer")
    parser.add_argument("--rss-csv", help="also write the service's resident memory samples (mode,seconds,MB) here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="medcam-soak-") as tmp:
        work = Path(tmp)
        checkpoint = args.checkpoint or default_checkpoint(work)
        if args.data:
            from medcam.inference import collect_images

            good = collect_images([args.data], exclude=["*_mask*"])[:20]
        else:
            good = [disc_image(work / f"good{i}.png", 500, 600) for i in range(3)]
        files, lines = make_cases(work / "inputs", good)
        failed = False
        runs: list[tuple[str, Callable[[], Tally]]] = []
        if args.mode in ("serve", "both"):
            runs.append(("medcam explain --serve", lambda: soak_serve(checkpoint, files, lines, args.minutes, rng,
                                                                       work, args.timeout)))
        if args.mode in ("app", "both"):
            runs.append(("medcam app", lambda: soak_app(checkpoint, files, args.minutes, rng, work, args.timeout)))
        samples = []
        for title, run in runs:
            tally = run()
            print(tally.report(title, args.minutes), flush=True)
            print(f"  resident MB by minute: {tally.by_minute()}", flush=True)
            samples += [(title, t, mb) for t, mb in tally.rss]
            failed = failed or bool(tally.unexpected) or tally.answered < tally.sent
        if args.rss_csv:
            Path(args.rss_csv).write_text("service,seconds,rss_mb\n" + "".join(f"{m},{t:.1f},{mb:.1f}\n"
                                                                               for m, t, mb in samples))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
