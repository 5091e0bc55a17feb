"""What the engine hands to a front door: plain text, buttons and facts.

A front door (console, Telegram) renders a Reply; it never decides what to say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    ANSWERED = "answered"
    AMBIGUOUS = "ambiguous"
    UNKNOWN = "unknown"
    SMALLTALK = "smalltalk"


@dataclass(frozen=True)
class Button:
    """A suggested follow-up. `action` is what pressing it means:
    "ask:<faq_id>" asks that FAQ entry, "clause:<id>" shows a clause,
    "cmd:<name>" runs a command such as check or contact."""

    label: str
    action: str


@dataclass(frozen=True)
class Reply:
    text: str
    outcome: Outcome
    confidence: float = 0.0
    faq_id: str | None = None
    faq_ids: tuple[str, ...] = ()
    clauses: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = field(default_factory=tuple)

    @property
    def button_labels(self) -> list[str]:
        return [b.label for b in self.buttons]

    def to_json(self, question: str) -> dict:
        """The batch protocol's record (see ../shared/eval/score.py)."""
        return {
            "question": question,
            "reply": self.text,
            "buttons": self.button_labels,
            "faq_id": self.faq_id,
            "clauses": list(self.clauses),
            # Small talk is a kind of answer as far as the protocol goes.
            "outcome": Outcome.ANSWERED.value if self.outcome is Outcome.SMALLTALK else self.outcome.value,
            "confidence": round(self.confidence, 3),
        }
