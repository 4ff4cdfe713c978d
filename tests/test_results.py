"""Tables quoted by the chapters are read from benchmarks/RESULTS.md (i2icourse.results)."""
import pytest

from i2icourse import results


def test_reads_the_table_under_a_heading(tmp_path):
    f = tmp_path / "RESULTS.md"
    f.write_text("# Results\n\n## A run (2026-01-01)\n\nHow it was run.\n\n| set | x | y |\n|---|---|---|\n"
                 "| Set5 | 1.5 | |\n| Set14 | 2.5 | 3 |\n\nAfter.\n\n## Another\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    t = results.table("A run", f)
    assert list(t.index) == ["Set5", "Set14"] and list(t.columns) == ["x", "y"]
    assert t.loc["Set5", "x"] == "1.5" and t.loc["Set5", "y"] == ""
    assert list(results.table("Another", f).index) == ["1"]
    with pytest.raises(KeyError, match="no heading"):
        results.table("Missing", f)
    with pytest.raises(FileNotFoundError, match="clone the repository"):
        results.table("A run", tmp_path / "nope.md")


def test_the_chapters_tables_are_in_the_repository():
    assert results.table("`pix2pix_step.py` (2026-11-26)").loc["H200", "plain"] == "82.5"
    assert "MS-SSIM" in results.table("A shortened `full` profile of chapter 3").columns


def test_show_says_where_the_table_is_when_the_file_is_absent(tmp_path, capsys):
    assert results.show("A run", tmp_path / "nope.md") is None
    assert "benchmarks/RESULTS.md" in capsys.readouterr().out
