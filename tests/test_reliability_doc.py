"""docs/reliability.md cannot drift from the code: every row's tests exist, and every message it
quotes is written by the code or asserted by those tests."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
SOURCES = ("espnet_cs/**/*.py", "egs2/TEMPLATE/asr1/**/*.sh", "path.sh")
PLACEHOLDER = re.compile(r"<[^<>]+>|\.\.\.")  # <file>, <utt>, ... in a quoted message


def rows() -> list[tuple[str, str, list[str]]]:
    """(case, what the user sees, tests) of each row of the table."""
    cases = DOC.read_text().split("\n## Every case\n", 1)[1]
    table = [line for line in cases.splitlines() if line.startswith("| ") and not line.startswith("| case")]
    cells = [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in table]
    assert all(len(row) == 3 for row in cells), [row for row in cells if len(row) != 3]
    return [(case, seen, re.findall(r"`(tests/[^`]+)`", tests)) for case, seen, tests in cells]


def joined(text: str) -> str:
    """``text`` with string literals continued on the next line joined."""
    return re.sub(r"[\"']\s*(\\\s*)?\n\s*[rfb]*[\"']", "", text)


def code_text() -> str:
    """The sources, with string literals joined and each f-string or shell field ending a literal piece."""
    text = joined("\n".join(path.read_text() for pattern in SOURCES for path in sorted(ROOT.glob(pattern))))
    return re.sub(r"\{[^{}\n]*\}", "\x00", text)


def test_every_case_names_tests_that_exist() -> None:
    for case, _, tests in rows():
        assert tests, f"{case}: no test"
        for test in tests:
            path, _, name = test.partition("::")
            assert (ROOT / path).is_file() and re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), test


def test_every_quoted_message_is_written_by_the_code_or_asserted_by_its_tests() -> None:
    code, unfound = code_text(), []
    for case, seen, tests in rows():
        asserted = joined("\n".join((ROOT / test.partition("::")[0]).read_text() for test in tests))
        corpus = code + asserted + asserted.replace("\\", "")
        for message in re.findall(r"`([^`]+)`", seen):
            pieces = [piece.strip(" :;,'") for piece in PLACEHOLDER.split(message)]
            unfound += [f"{case}: {piece!r}" for piece in pieces if len(piece) >= 4 and piece not in corpus]
    assert unfound == [], "neither in the code nor in the row's tests:\n" + "\n".join(unfound)
