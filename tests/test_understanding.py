"""Questions written apart from the FAQ phrasings: the engine must understand, not memorise."""

from pathlib import Path

import yaml

from knowledge.answering.normalise import basic_normalise

SET = Path(__file__).parent / "data" / "understanding.yaml"


def squash(text: str) -> str:
    return "".join(basic_normalise(text).split())


def test_understanding_set(assistant):
    items = yaml.safe_load(SET.read_text(encoding="utf-8"))["items"]
    failures = []
    for item in items:
        reply = squash(assistant.answer(item["q"]).text)
        missing = [fact for fact in item["must"] if not any(squash(alt) in reply for alt in fact)]
        forbidden = [s for s in item.get("must_not", []) if squash(s) in reply]
        if missing or forbidden:
            failures.append((item["id"], item["q"], missing, forbidden))
    accuracy = 1 - len(failures) / len(items)
    assert accuracy >= 0.9, f"{accuracy:.3f}: {failures}"
