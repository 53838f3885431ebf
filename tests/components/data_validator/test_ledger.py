"""The span ledger: verdicts written whole, read back, rejected spans and the last accepted."""

from tfx_metric_learning.components.data_validator import ledger


def verdict(span, accepted, version=None):
    return {"span": span, "version": version, "accepted": accepted, "statistics": f"s/{span}"}


def test_verdicts_round_trip_and_the_newest_verdict_of_a_span_wins(tmp_path):
    folder = str(tmp_path / "verdicts")
    assert ledger.verdicts(folder) == {} and ledger.latest_accepted_before(folder, 9) is None
    ledger.record(folder, verdict(1, True))
    ledger.record(folder, verdict(2, True))
    ledger.record(folder, verdict(3, False, version=1))
    assert ledger.rejected(folder) == {3: 1}
    assert ledger.latest_accepted_before(folder, 4)["span"] == 2  # not the rejected 3
    assert ledger.latest_accepted_before(folder, 2)["span"] == 1
    assert ledger.latest_accepted_before(folder, 1) is None
    ledger.record(folder, verdict(3, True, version=2))  # a corrected version passed
    assert ledger.rejected(folder) == {}
    assert ledger.latest_accepted_before(folder, 4)["statistics"] == "s/3"
    # written to a temporary name and renamed: nothing else is left in the folder
    assert sorted(p.name for p in (tmp_path / "verdicts").iterdir()) == [
        "span-1.json",
        "span-2.json",
        "span-3.json",
    ]
