"""Cell specs of a study: ``"rnn,lstm,gru,lstm:peephole,gru:mut1"`` -> one :class:`CellSpec` each."""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.errors import InputError
from rnnlab.layers import CELLS, check_cell, default_variant, variants_of


@dataclass(frozen=True)
class CellSpec:
    """One contestant of a study: a cell family and one of its variants."""

    cell: str  # one of rnnlab.layers.CELLS, or a mixed stack such as "lstm+gru"
    variant: str  # one of variants_of(cell)

    @property
    def label(self) -> str:
        """``lstm`` for a family's default variant, else ``lstm:peephole``."""
        return self.cell if self.variant == default_variant(self.cell) else f"{self.cell}:{self.variant}"

    @property
    def slug(self) -> str:
        """The label as a file name: ``lstm-peephole``, ``lstm_gru`` for the mixed ``lstm+gru``."""
        return self.label.replace(":", "-").replace("+", "_")


def parse_cells(text: str) -> list[CellSpec]:
    """Parse a comma-separated list of ``cell`` or ``cell:variant``; duplicates and unknown names are errors."""
    specs: list[CellSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise InputError(f"empty cell spec in {text!r}; expected e.g. 'rnn,lstm,gru,lstm:peephole'")
        cell, _, variant = item.partition(":")
        if "+" not in cell and cell not in CELLS:
            raise InputError(f"unknown cell {cell!r} in cell spec {item!r}; expected one of: {', '.join(CELLS)}, "
                             "or families joined by '+' (a mixed stack, e.g. lstm+gru)")
        check_cell(cell)  # a mixed stack: names its unknown family
        variant = variant or default_variant(cell)
        if variant not in variants_of(cell):
            raise InputError(f"unknown {cell} variant {variant!r} in cell spec {item!r}; expected one of: "
                             f"{', '.join(variants_of(cell))}")
        spec = CellSpec(cell, variant)
        if spec in specs:
            raise InputError(f"cell spec {spec.label!r} is given twice")
        specs.append(spec)
    return specs
