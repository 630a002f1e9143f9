"""How the suite itself runs: property tests in CI draw the same examples every time."""

from __future__ import annotations

from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_test_command_runs_property_tests_derandomised() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert 'export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"' in script
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.print_blob
    assert settings.get_profile("dev").print_blob
