"""Learning curves: each trained system's validation loss per epoch, and ESPnet's plots of its runs."""

from __future__ import annotations

import os
from pathlib import Path

from espnet_cs.report.cells import markdown_table, section
from espnet_cs.report.rows import Tables
from espnet_cs.results_archive import CURVE_IMAGES


def losses_cell(curves: list[dict]) -> str:
    """The validation loss of each epoch, per run (``phase 1: …; phase 2: …`` for two)."""
    runs = [", ".join("—" if v is None else f"{v:.2f}" for v in curve["valid_loss"]) for curve in curves]
    return runs[0] if len(runs) == 1 else "; ".join(f"phase {i}: {run}" for i, run in enumerate(runs, start=1))


def learning_rate_cell(training: dict) -> str:
    """The learning rate of a training summary, ``—`` where it is not recorded."""
    rate = training.get("learning_rate")
    return "—" if rate is None else f"{rate:g}"


def known_losses(valid_loss: list[float | None]) -> list[tuple[int, float]]:
    """``(epoch, loss)`` of the epochs (from 1) whose validation loss was recorded."""
    return [(epoch, loss) for epoch, loss in enumerate(valid_loss, start=1) if loss is not None]


def best_epoch(valid_loss: list[float | None]) -> tuple[int, float] | None:
    """``(epoch, loss)`` of the lowest recorded validation loss, None if none was."""
    return min(known_losses(valid_loss), key=lambda pair: pair[1], default=None)


def flattening_cells(valid_loss: list[float | None]) -> list[str]:
    """The best epoch by validation loss, and the last epoch's change against the one before, in percent."""
    known, best = known_losses(valid_loss), best_epoch(valid_loss)
    if best is None:
        return ["—", "—"]
    if len(known) < 2:
        return [str(best[0]), "—"]
    (_, before), (_, last) = known[-2:]
    return [str(best[0]), f"{100 * (last - before) / before:+.1f}%"]


def plots_cell(curves: list[dict], source: Path, out: Path) -> str:
    """Links to ESPnet's plots of each run archived in ``source``, relative to ``out``'s dir."""
    links = [
        f"[{curve['run']} {name.removesuffix('.png')}]({os.path.relpath(plot, out.parent)})"
        for curve in curves
        for name in CURVE_IMAGES
        if (plot := source / curve["run"] / "images" / name).exists()
    ]
    return ", ".join(links) or "—"


def curves_section(tables: Tables, source: Path, out: Path) -> list[str]:
    """One row per trained system of ``tables`` whose training summary has its curves."""
    trainings = {
        row.system: row.training
        for rows in tables.values()
        for row in rows
        if row.trained and not row.guarded and not row.decode_variant and row.training.get("curves")
    }
    if not trainings:
        return []
    cells = []
    for system, training in sorted(trainings.items()):
        curves = training["curves"]
        cells.append(
            [
                f"`{system}`",
                learning_rate_cell(training),
                str(training["epochs"] or "—"),
                losses_cell(curves),
                *flattening_cells(curves[-1]["valid_loss"]),
                plots_cell(curves, source, out),
            ]
        )
    note = (
        "Validation loss after each finished epoch (ESPnet's `loss`, the criterion by which stage 7 averages the "
        "best checkpoints), the best epoch of the last training run, and the change of its last epoch against the "
        "one before: a run has flattened where that change is near zero or positive. The plots are ESPnet's "
        "(`exp/<run>/images/`), copied into the results archive."
    )
    header = ["system", "learning rate", "epochs", "validation loss per epoch", "best epoch", "last epoch", "plots"]
    return section("Learning curves", note, table=markdown_table(header, cells))
