"""The procedures offered as options, as choices a channel can render and the next turn understands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from bot.domain import Option
from bot.knowledge.models import Procedure


def offered_options(procedures: Mapping[str, Procedure], codes: list[str],
                    payload: Literal["number", "rasa"] = "number") -> list[Option]:  # fmt: skip
    """"1. <title>" for each offered procedure, with a payload that chooses it.

    ``payload="number"`` sends back the bare number (the engine's own choice syntax); ``"rasa"`` sends Rasa's
    intent-with-entity syntax, which skips the classifier."""
    options = []
    for i, code in enumerate(codes, 1):
        proc = procedures.get(code)
        if proc is not None:
            choice = str(i) if payload == "number" else f'/choose_option{{"option": "{i}"}}'
            options.append(Option(f"{i}. {proc.title}", choice))
    return options
