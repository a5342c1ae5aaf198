"""medcam_vmamba.table: the configuration table printed for docs/vmamba.md."""
from __future__ import annotations

import pytest

import medcam_vmamba.table as table
from medcam_vmamba.configs import CONFIGS


def test_table_counts_built_models(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    subset = {k: CONFIGS[k] for k in ("vmamba_tiny_s1l8", "vanilla_vmamba_tiny")}
    monkeypatch.setattr(table, "CONFIGS", subset)
    table.main()
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| name | official | depths |") and len(lines) == 4
    assert lines[2].startswith("| vmamba_tiny_s1l8 (= vmamba_tiny) | VMamba-T[s1l8] | [2, 2, 8, 2] | 96 | 1 |")
    assert "| 30.25M | 29.48M | 82.6 |" in lines[2]
    assert "| 22.89M | 22.12M | 82.2 |" in lines[3]
