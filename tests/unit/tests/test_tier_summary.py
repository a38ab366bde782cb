"""tests/conftest.py's closing lines: which tiers ran, and a loud line for a tier where every test skipped.

Each case is a real pytest run (``pytester``) over a small tree laid out like ours, with our hook as its conftest.
"""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

HOOK = "from tests.conftest import pytest_terminal_summary  # noqa: F401 -- the hook under test\n"
TWO_PASSING = "def test_one():\n    pass\n\ndef test_two():\n    pass\n"
NO_ENGINE = "import pytest\n\ndef test_image():\n    pytest.skip('no Docker engine can be started here')\n"


def _tree(pytester: pytest.Pytester, files: dict[str, str]) -> list[str]:
    pytester.makeconftest(HOOK)
    for path, text in files.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return pytester.runpytest("-q", "-rs", "-p", "no:cacheprovider").outlines


def test_each_tier_is_named_with_its_counts(pytester: pytest.Pytester) -> None:
    lines = _tree(pytester, {"tests/unit/tasks/test_a.py": TWO_PASSING, "tests/launcher/test_b.py": TWO_PASSING,
                             "tests/model/test_c.py": "def test_fails():\n    assert False\n"})
    assert "tiers: unit 2 passed; model 1 failed; launcher 2 passed" in lines
    assert not [line for line in lines if "SKIPPED, none ran" in line]


def test_a_tier_that_skipped_entirely_is_said_loudly_with_the_reason(pytester: pytest.Pytester) -> None:
    lines = _tree(pytester, {"tests/unit/test_a.py": TWO_PASSING, "tests/docker/test_image.py": NO_ENGINE})
    assert "tiers: unit 2 passed; docker 1 skipped" in lines
    assert "docker: 1 SKIPPED, none ran (no Docker engine can be started here)" in lines
    # after pytest's own skip report, so it is the last thing above the final count
    assert lines.index("docker: 1 SKIPPED, none ran (no Docker engine can be started here)") > max(
        i for i, line in enumerate(lines) if line.startswith("SKIPPED"))


def test_a_tier_where_some_tests_ran_is_not_flagged(pytester: pytest.Pytester) -> None:
    lines = _tree(pytester, {"tests/docker/test_image.py": NO_ENGINE + "\n" + TWO_PASSING})
    assert "tiers: docker 2 passed, 1 skipped" in lines
    assert not [line for line in lines if "SKIPPED, none ran" in line]


def test_the_opt_in_sdk_tier_is_counted_but_not_flagged(pytester: pytest.Pytester) -> None:
    lines = _tree(pytester, {"tests/unit/test_a.py": TWO_PASSING, "tests/sdk/test_sdk.py": NO_ENGINE})
    assert "tiers: unit 2 passed; sdk 1 skipped" in lines
    assert not [line for line in lines if "SKIPPED, none ran" in line]
