"""Child process of the training-kill cases (run directly; not collected).

    python _kill_child.py --out DIR [--resume] [--pause-after checkpoint|metrics]

Trains tests/core/engine/_train_child.py's tiny run (2 epochs). ``--pause-after``
prints ``KILL-MARKER`` right after the final epoch's ``last.pt``
(``checkpoint``) or ``metrics.jsonl`` (``metrics``) is written, then waits to
be killed: the two moments between which an epoch's files are written.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "engine"))

import _train_child  # noqa: E402
from medcam.engine import logs, trainer  # noqa: E402

EPOCHS = 2


def _pause() -> None:
    print("KILL-MARKER", flush=True)
    time.sleep(600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--pause-after", choices=("checkpoint", "metrics"))
    args = parser.parse_args()
    if args.pause_after == "checkpoint":
        save = trainer.save

        def save_then_pause(model, path, **kwargs):
            written = save(model, path, **kwargs)
            if Path(path).name == "last.pt" and kwargs.get("epoch") == EPOCHS:
                _pause()
            return written

        trainer.save = save_then_pause
    elif args.pause_after == "metrics":
        write = logs.RunFiles.write_history

        def write_then_pause(self, history):
            write(self, history)
            if len(history) == EPOCHS:
                _pause()

        logs.RunFiles.write_history = write_then_pause
    sys.argv = [sys.argv[0], "--out", args.out, "--epochs", str(EPOCHS)] + (["--resume"] if args.resume else [])
    _train_child.main()


if __name__ == "__main__":
    main()
