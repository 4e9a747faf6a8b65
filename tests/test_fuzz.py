"""2,000 random public calls: only Prov4MLErrors, no hang, nothing lost (see fuzzing.py)."""

from fuzzing import fuzz


def test_random_public_calls_raise_only_prov4ml_errors_and_lose_nothing(tmp_path):
    figures = fuzz(tmp_path / "prov", examples=2000)
    report = "\n".join(figures.lines())
    assert figures.calls >= 2000, report
    assert figures.crashes == [], report
    assert figures.points_lost == 0 and figures.points_found == figures.points_expected > 50, report
    assert figures.accepted > 300 and sum(figures.rejected.values()) > 300, report
