"""The findings table: verdicts from paired intervals, claims on the sets of their kind."""

import json

import pytest

from espnet_cs.bootstrap import Interval, PairedDifference
from espnet_cs.findings import CLAIMS, Claim, Finding, agreement_cells, claim_verdict, comparison_verdict, findings
from espnet_cs.report.comparisons import Regime, findings_section
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
    found = findings(claims, {"cs": False, "mono": True}, lambda s, a, b: results.get((s, a, b)))
    assert [finding.row() for finding in found] == [
        "| P | a beats b and c | cs | as decoded | `a` − `b`: -1.5 [-2.0, -1.0] | confirmed (1 of its 2 comparisons run) |",
        "| P | a beats b and c | cs | guard | `a_guard` − `b_guard`: +0.0 [-0.5, +0.5] "
        "| not resolved (1 of its 2 comparisons run) |",
        "| P | a forgets less than b | mono | as decoded | `a` − `b`: +1.0 [+0.5, +1.5] | contradicted |",
    ]


def test_agreement_compares_verdicts_of_the_same_claim_set_and_hypotheses():
    claim = Claim("P", "a beats b and c", (("a", "b"), ("a", "c")))
    here = Finding(claim, "test", "guard", ("cell",), "confirmed", 2)
    other = {
        ("a beats b and c", "test", "guard"): Finding(claim, "test", "guard", ("cell",), "confirmed", 1),
        ("a beats b and c", "test", "as decoded"): Finding(claim, "test", "as decoded", ("cell",), "contradicted", 2),
    }
    assert agreement_cells(here, other) == ("confirmed (1 of its 2 comparisons run)", "yes")
    decoded = Finding(claim, "test", "as decoded", ("cell",), "not resolved", 2)
    assert agreement_cells(decoded, other) == ("contradicted", "no")
    assert agreement_cells(Finding(claim, "valid", "guard", ("cell",), "confirmed", 2), other) == ("—", "—")
    assert here.row("x", "y") == "| P | a beats b and c | test | guard | cell | confirmed | x | y |"


def test_every_claim_names_systems_and_the_report_section(tmp_path):
    assert len(CLAIMS) == 9 and all(claim.comparisons for claim in CLAIMS)
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


def test_the_findings_set_each_verdict_beside_the_other_regimes(tmp_path):
    refs = {"u1": "我们开 meeting 吧", "u2": "他们开 party 吧"}
    right = json.loads(score(refs, refs).to_json())
    wrong = json.loads(score(refs, {"u1": "我们开 meetings 吧", "u2": "他们开 parties 吧"}).to_json())
    here = {"test": [Row("adapter", wrong, {}, {"epochs": 1}), Row("adapter_ag", right, {}, {"epochs": 1})]}
    there = {
        "test": [Row("adapter", right, {}, {"epochs": 1}), Row("adapter_ag", wrong, {}, {"epochs": 1})],
        "valid": [Row("adapter", right, {}, {"epochs": 1}), Row("adapter_ag", wrong, {}, {"epochs": 1})],
    }
    lines = findings_section(here, tmp_path, Regime(there, tmp_path / "results_v1", "espeak-ng (v1)"))
    assert "in espeak-ng (v1), made the same way from its results (`" in lines[3]
    assert lines[5].endswith("| verdict | verdict in espeak-ng (v1) | agrees |")
    assert lines[7] == (
        "| AG | attention guidance beats plain adapters | test | as decoded | `adapter_ag` − `adapter`: -20.0 [-20.0, -20.0] "
        "| confirmed (1 of its 2 comparisons run) | contradicted (1 of its 2 comparisons run) | no |"
    )
    assert len(lines) == 8  # valid's verdict there has no row here
    assert findings_section(here, tmp_path, Regime({}, tmp_path, "v0"))[7].endswith("| — | — |")
