"""``python -m vitok`` (also what ``torchrun -m vitok`` runs)."""

from vitok.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
