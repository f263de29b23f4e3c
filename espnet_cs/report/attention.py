"""The LID heads of the backbone (stage 4) and the attention of the guided heads (stage 10)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from espnet_cs.report.cells import markdown_table, section


def lid_heads_section(source: Path, out: Path) -> list[str]:
    """Stage 4's ``<source>/lid_heads/lid_heads.json``, if present; paths relative to ``out``'s dir."""
    heads_file = source / "lid_heads" / "lid_heads.json"
    if not heads_file.exists():
        return []
    heads = json.loads(heads_file.read_text())
    heat_map = os.path.relpath(heads_file.with_name("heads.png"), out.parent)
    return section(
        "LID heads",
        f"{len(heads['ranked'])} of {heads['n_layers'] * heads['n_heads']} decoder self-attention heads are LID "
        f"heads (at least at {100 * heads['min_fraction']:.0f}% of the {heads['word_tokens']} word tokens of "
        f"{heads['n_sentences']} training sentences, decoder layer 0 left out; "
        f"`{os.path.relpath(heads_file, out.parent)}`, heat map `{heat_map}`). Before any training, "
        f"{100 * heads['own_language_share']:.1f}% of (word token, head) pairs put more LID-column attention on "
        "their own language than on the other.",
    )


def attention_sections(source: Path, out: Path) -> list[str]:
    """One section per stage-10 ``<source>/attention/<set>/attention.json``; paths relative to ``out``'s dir."""
    lines = []
    for report in sorted(source.glob("attention/*/attention.json")):
        data = json.loads(report.read_text())
        figure = os.path.relpath(report.with_suffix(".png"), out.parent)
        note = (
            "Share of (word token, guided head) pairs whose larger LID-column attention is on the token's own "
            f"language (heads: {data['selection']} {data['fraction']:g} of `{data['lid_heads']}`); figure for "
            f"`{data['utt']}`: `{figure}`."
        )
        rows = [
            [f"`{name}`", f"{100 * v['own_language']:.1f}%", str(v["pairs"])] for name, v in data["systems"].items()
        ]
        table = markdown_table(["system", "own language", "pairs"], rows)
        lines += section(f"Attention of the guided heads on {report.parent.name}", note, table=table)
    return lines
