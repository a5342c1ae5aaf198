"""medcam.progress.show_bar: bars only on terminals, never when asked not to or when TQDM_DISABLE is set."""
from __future__ import annotations

import io
import sys

from medcam.progress import show_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert show_bar() is True and show_bar(True) is True
    assert show_bar(False) is False and show_bar(None) is False
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert show_bar() is False
    monkeypatch.delenv("TQDM_DISABLE")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file or a pipe
    assert show_bar() is False
