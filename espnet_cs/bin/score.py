"""Score code-switching ASR hypotheses: MER overall and on cs utterances, CER on Mandarin-only,
WER on English-only ones (see :mod:`espnet_cs.scoring` for normalization and edge cases).

Hypotheses in a decode dir (its ``decode_info.json`` records the audio they were decoded from)
are scored only against a stage-2 data dir holding that same audio: after stage 2 reformatted
changed audio, the old hypotheses are refused (rerun the decoding) and the scores they had are
removed, so no table shows them as scores of the new data.

    python -m espnet_cs.bin.score --data_dir data/test \\
        --hyp exp/x/decode_test/text --out_dir exp/x/decode_test [--conditions data/test/utt2condition]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from espnet_cs.decode_dir import read_info
from espnet_cs.scoring import score_dir
from espnet_cs.splitting import AUDIO_DIGESTS, audio_sha256

SCORE_FILES = ("scores.json", "result.txt", "alignments.txt")


def check_decoded_audio(data_dir: Path, hyp: Path, out_dir: Path) -> None:
    """Raise ValueError if the decode dir of ``hyp`` was decoded from other audio than ``data_dir``
    holds now (both must record it: a decode dir and a stage-2 dir); its old scores are removed."""
    if not (hyp.parent / "decode_info.json").exists() or not (data_dir / AUDIO_DIGESTS).exists():
        return
    decoded = read_info(hyp.parent).get("audio_sha256")
    if decoded == audio_sha256(data_dir):
        return
    for name in SCORE_FILES:
        (out_dir / name).unlink(missing_ok=True)
    when = "by an older version of espnet_cs" if decoded is None else "from other audio"
    raise ValueError(f"{hyp} was decoded {when} than {data_dir} holds now: decode it again (stage 3 or 8)")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data_dir",
        type=Path,
        required=True,
        help="reference Kaldi data dir with 'text' and optionally 'utt2category' (cs/zh/en per "
        "utterance; inferred from the reference text when absent)",
    )
    parser.add_argument(
        "--hyp",
        type=Path,
        required=True,
        help="hypotheses in Kaldi 'text' format: '<utt-id> [text...]' per line",
    )
    parser.add_argument(
        "--out_dir",
        type=Path,
        required=True,
        help="where scores.json, result.txt and alignments.txt are written",
    )
    parser.add_argument(
        "--conditions",
        type=Path,
        help="an utt2condition (a synthetic corpus's acoustic condition per utterance): the rates by condition "
        "class (clean, reverberant, noisy, reverberant+noisy) go to result.txt and to scores.json's by_condition",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        check_decoded_audio(args.data_dir, args.hyp, args.out_dir)
        report = score_dir(args.data_dir, args.hyp, args.out_dir, args.conditions)
    except (OSError, ValueError) as e:
        sys.exit(f"score.py: error: {e}")
    print(report.summary(), end="")


if __name__ == "__main__":
    main()
