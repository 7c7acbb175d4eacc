"""Small text helpers for messages shown to users."""

from __future__ import annotations


def tail(text: str, lines: int = 3, chars: int = 400) -> str:
    """The last ``lines`` lines of a command's output on one line, at most ``chars`` characters."""
    return " ".join(text.strip().splitlines()[-lines:])[-chars:]


def model_label(name: str | None, architecture: str) -> str:
    """A model as results and tables name it: the name the user gave, with the architecture when
    they differ ('vitok-tiny-conv (Ti-XS/4x8)'), else the architecture alone ('S-B/16')."""
    return f"{name} ({architecture})" if name and name != architecture else architecture


def plural(count: int, noun: str) -> str:
    """'1 image', '2 images', '1 class', '3 classes', '0 videos'."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith(("s", "x", "ch", "sh")) else f"{count} {noun}s"
