"""training.outputs.StagedOutput: a model directory appears whole at the end of a run, or not at all."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.outputs import OutputError, StagedOutput


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _write_model(folder: Path) -> None:
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "vocab.txt").write_text("[PAD]")


def test_new_directory_is_staged_beside_it_and_renamed_whole(tmp_path):
    target = tmp_path / "runs" / "model"
    staged = StagedOutput(target)
    assert staged.path.parent == target.parent and staged.path.name.startswith(".staging-model-")
    _write_model(staged.path)
    assert not target.exists()  # nothing visible before commit
    assert staged.commit() == target
    assert _tree(target) == {"config.json": "{}", "tokenizer/vocab.txt": "[PAD]"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]


def test_existing_empty_directory_is_filled_in_place(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    staged = StagedOutput(target)
    assert staged.path.parent == target and staged.path.name.startswith(".staging-")
    _write_model(staged.path)
    assert sorted(p.name for p in target.iterdir()) == [staged.path.name]
    staged.commit()
    assert _tree(target) == {"config.json": "{}", "tokenizer/vocab.txt": "[PAD]"}
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "tokenizer"]


def test_non_empty_directory_is_refused_and_left_alone(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with pytest.raises(OutputError) as info:
        StagedOutput(target)
    assert str(info.value) == (f"output directory {target} is not empty (['old.bin']); "
                               "choose an empty or new directory")
    assert sorted(p.name for p in target.iterdir()) == ["old.bin"]


def test_refusal_lists_at_most_five_entries(tmp_path):
    for name in "gfedcba":
        (tmp_path / name).write_text("x")
    with pytest.raises(OutputError, match=r"\(\['a', 'b', 'c', 'd', 'e'\]\)"):
        StagedOutput(tmp_path)


def test_a_file_is_refused(tmp_path):
    target = tmp_path / "model"
    target.write_text("not a directory")
    with pytest.raises(OutputError) as info:
        StagedOutput(target)
    assert str(info.value) == f"output {target} exists and is not a directory"


def test_failure_in_a_new_directory_leaves_nothing(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError, match="training diverged"):
        with StagedOutput(target) as staged:
            _write_model(staged.path)
            raise RuntimeError("training diverged")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failure_in_an_existing_directory_leaves_it_empty(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with StagedOutput(target) as staged:
            _write_model(staged.path)
            raise KeyboardInterrupt
    assert list(target.iterdir()) == []


def test_commit_inside_the_context_manager_keeps_the_model(tmp_path):
    target = tmp_path / "model"
    with StagedOutput(target) as staged:
        _write_model(staged.path)
        staged.commit()
    assert _tree(target) == {"config.json": "{}", "tokenizer/vocab.txt": "[PAD]"}


def test_discard_removes_the_staging_directory(tmp_path):
    staged = StagedOutput(tmp_path / "model")
    _write_model(staged.path)
    staged.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_stale_staging_directory_does_not_count_as_content(tmp_path):
    # a run killed before it could clean up leaves its staging directory inside the mounted target
    target = tmp_path / "model"
    (target / ".staging-old").mkdir(parents=True)
    staged = StagedOutput(target)
    (staged.path / "config.json").write_text("{}")
    staged.commit()
    assert (target / "config.json").read_text() == "{}"
