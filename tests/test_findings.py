"""The findings table: verdicts from paired intervals, claims on the sets of their kind."""

import json

import pytest

from espnet_cs.bootstrap import Interval, PairedDifference
from espnet_cs.findings import CLAIMS, Claim, claim_verdict, comparison_verdict, findings_rows
from espnet_cs.report.comparisons import findings_section
from espnet_cs.report.rows import Row
from espnet_cs.scoring import score


def paired(low: float, high: float) -> PairedDifference:
    return PairedDifference(difference=(low + high) / 2, interval=Interval(low, high), p_value=0.5)


def test_comparison_verdict_follows_the_interval():
    assert comparison_verdict(paired(-3.0, -0.1)) == "confirmed"
    assert comparison_verdict(paired(0.2, 4.0)) == "contradicted"
    assert comparison_verdict(paired(-1.0, 1.0)) == "not resolved"
    assert comparison_verdict(paired(-1.0, 0.0)) == "not resolved"  # zero inside the interval


def test_claim_verdict():
    assert claim_verdict(["confirmed", "confirmed"]) == "confirmed"
    assert claim_verdict(["confirmed", "not resolved"]) == "not resolved"
    assert claim_verdict(["confirmed", "not resolved", "contradicted"]) == "contradicted"
    with pytest.raises(ValueError, match="at least one"):
        claim_verdict([])


def test_rows_take_each_claim_to_the_sets_of_its_kind():
    claims = (
        Claim("P", "a beats b and c", (("a", "b"), ("a", "c"))),
        Claim("P", "a forgets less than b", (("a", "b"),), forgetting=True),
        Claim("P", "nothing run", (("x", "y"),)),
    )
    results = {
        ("cs", "a", "b"): paired(-2.0, -1.0),
        ("cs", "a_guard", "b_guard"): paired(-0.5, 0.5),  # with the guard: b's loops cut
        ("mono", "a", "b"): paired(0.5, 1.5),
    }
    rows = findings_rows(claims, {"cs": False, "mono": True}, lambda s, a, b: results.get((s, a, b)))
    assert rows == [
        "| P | a beats b and c | cs | as decoded | `a` − `b`: -1.5 [-2.0, -1.0] | confirmed (1 of its 2 comparisons run) |",
        "| P | a beats b and c | cs | guard | `a_guard` − `b_guard`: +0.0 [-0.5, +0.5] "
        "| not resolved (1 of its 2 comparisons run) |",
        "| P | a forgets less than b | mono | as decoded | `a` − `b`: +1.0 [+0.5, +1.5] | contradicted |",
    ]


def test_every_claim_names_systems_and_the_report_section(tmp_path):
    assert len(CLAIMS) == 8 and all(claim.comparisons for claim in CLAIMS)
    refs = {"u1": "我们开 meeting 吧", "u2": "他们开 party 吧"}
    right = json.loads(score(refs, refs).to_json())
    wrong = json.loads(score(refs, {"u1": "我们开 meetings 吧", "u2": "他们开 parties 吧"}).to_json())
    tables = {"test": [Row("adapter", wrong, {}, {"epochs": 1}), Row("adapter_ag", right, {}, {"epochs": 1})]}
    (tmp_path / "attention/test").mkdir(parents=True)
    systems = {"adapter": {"own_language": 0.61, "pairs": 10}, "adapter_ag": {"own_language": 0.9, "pairs": 10}}
    (tmp_path / "attention/test/attention.json").write_text(json.dumps({"systems": systems}))
    lines = findings_section(tables, tmp_path)
    assert lines[1] == "## Findings"
    assert lines[7] == (
        "| AG | attention guidance beats plain adapters | test | as decoded | `adapter_ag` − `adapter`: -20.0 [-20.0, -20.0] "
        "| confirmed (1 of its 2 comparisons run) |"
    )
    assert lines[-1].endswith("`adapter` 61.0%, `adapter_ag` 90.0%.")
    assert findings_section({"test": tables["test"][:1]}, tmp_path) == []
