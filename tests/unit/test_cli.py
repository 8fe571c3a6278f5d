"""`recsys` entry point: help lists the commands; RecsysError -> exit 2 with a message on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recsys.cli import _available, main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_available_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    names = list(_available())
    assert "import" in names
    for name in names:
        assert f"    {name}" in out, name


def test_help_runs_as_a_module_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "recsys.cli", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: recsys" in proc.stdout and "import" in proc.stdout


def test_import_of_a_missing_dir_exits_2_with_the_path_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-dir"
    assert main(["import", str(missing), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("recsys import: error: ")
    assert str(missing) in captured.err
    assert captured.out == ""
    assert not (tmp_path / "out").exists()


def test_import_of_an_unrecognised_dir_exits_2_naming_the_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.txt").write_text("hello")
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot detect the format" in err and "notes.txt" in err


def test_bad_flags_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["import", "x"])  # --out is required
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err
