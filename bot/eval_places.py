"""Scoring of the place questions (eval/places/place_questions.jsonl), part of `python -m bot eval`.

Each row is a conversation (``turns``) with, read from the data and not from the engine (eval/places/README.md):

- ``place``: what the last place named is today — ``status`` (converted, split, several, unmapped, ambiguous,
  unlisted, current), and where the data gives them ``now``, ``options`` and ``province_now``;
- ``procedure`` and ``levels`` (for "where" questions): the procedure the last turn asks about and the levels its
  record names in "Cấp thực hiện" (commune, province, central, other); ``district_wording``: the record still
  names a district-level body.

Keys added (docs/evaluation.md, "Places"):

- ``place:mapped`` — the reading kept in the conversation state has the expected status and the expected
  ``now`` / ``options`` / ``province_now``, and a reply whose place is not exactly one unit today never names one
  ("… nay thuộc Xã …") for it;
- ``place:where_level`` — the last reply answers the expected procedure, its ``answer.fields.where.levels`` are the
  record's levels, its text names them ("Cấp thực hiện: cấp xã"), and for a record that still names a district-level
  body it says that level is gone instead of presenting it; ``place:where_level_given_procedure`` — the same over
  the questions whose procedure was answered (the level part alone);
- ``place:structured`` — the last reply about a procedure carries the structured ``answer`` for that procedure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.answer.places import LEVEL_CODES, LEVEL_NAMES
from bot.domain import ConversationState, Reply

_NAMES_BY_CODE = {LEVEL_CODES[k]: v for k, v in LEVEL_NAMES.items()}

Play = Callable[[str, ConversationState | None], tuple[Reply, ConversationState]]


def _mapped(row: dict, reply: Reply, state: ConversationState) -> tuple[bool, str]:
    want = row["place"]
    got = state.place or {}
    if got.get("status") != want["status"]:
        return False, f"status {got.get('status')} (expected {want['status']})"
    for key in ("now", "province_now"):
        if key in want and got.get(key) != want[key]:
            return False, f"{key} {got.get(key)!r} (expected {want[key]!r})"
    if "options" in want and sorted(got.get("options") or []) != sorted(want["options"]):
        return False, f"options {got.get('options')} (expected {want['options']})"
    if want["status"] not in ("converted", "current") and any(
        f"nay thuộc {unit}" in reply.reply for unit in ("Xã ", "Phường ", "Đặc khu ", "Thị trấn ")
    ):
        return False, "names one commune for a place the data does not map to one"
    return True, ""


def _where_level(row: dict, reply: Reply) -> tuple[bool | None, str]:
    """(None when the procedure was not answered, else whether the level is right; what went wrong)."""
    code = reply.sources[0].id if reply.sources and not reply.fallback else None
    if code not in row["procedure"]:
        return None, f"procedure {code} (expected {row['procedure']})"
    where = ((reply.answer or {}).get("fields") or {}).get("where") or {}
    if where.get("levels") != row["levels"]:
        return False, f"answer levels {where.get('levels')} (expected {row['levels']})"
    named = ", ".join(_NAMES_BY_CODE[c] for c in row["levels"])
    if f"Cấp thực hiện: {named}." not in reply.reply:
        return False, f"the text does not name {named!r}"
    if row.get("district_wording") and "cấp này không còn" not in reply.reply:
        return False, "the record's district-level wording is not explained"
    return True, ""


def score_places(rows: list[dict], play: Play, add: Callable[[str, float], None]) -> list[dict[str, Any]]:
    """Play each conversation afresh and add the keys above; returns one line per miss."""
    misses: list[dict[str, Any]] = []
    for row in rows:
        state: ConversationState | None = None
        reply: Reply | None = None
        for text in row["turns"]:
            reply, state = play(text, state)
        assert reply is not None and state is not None
        problems = []
        if "place" in row:
            ok, why = _mapped(row, reply, state)
            add("place:mapped", float(ok))
            add(f"place:mapped:{row.get('region', 'other')}", float(ok))
            if not ok:
                problems.append(why)
        if "levels" in row:
            level, why = _where_level(row, reply)
            add("place:where_level", float(bool(level)))
            if level is not None:
                add("place:where_level_given_procedure", float(level))
                answer = reply.answer or {}
                add("place:structured", float(answer.get("procedure") == reply.sources[0].id))
            if not level:
                problems.append(why)
        if problems:
            misses.append({"id": row["id"], "turns": row["turns"], "problems": problems})
    return misses
