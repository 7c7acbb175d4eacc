"""The precisions a tokenizer runs in, by name (what ``--precision`` accepts); what each one does
is :mod:`vitok.models.inference`. Kept apart from it so that the command line can list them
without importing torch."""

from __future__ import annotations

PRECISIONS = ("fp32", "bf16")  # what inference commands accept
BENCH_PRECISIONS = ("fp32", "bf16-autocast", "bf16")  # what the benchmark can measure


def check_precision(precision: str, allowed: tuple[str, ...] = BENCH_PRECISIONS) -> None:
    """Raise ``ValueError`` unless ``precision`` is one of ``allowed``."""
    if precision not in allowed:
        raise ValueError(f"precision must be one of {', '.join(allowed)}, got {precision!r}")
