"""The shape of a message: which clauses ask something, which only set the scene.

"我们是区博物馆，属于事业单位，材料最晚啥时候交？" is one question (the deadline)
with context before it. The engine scores both the whole message and its
focus, the asking part, so context words the knowledge base never uses do
not sink a good match, while context that changes the answer ("我是个人") is
still seen in the whole. A message is split into several questions only
where each part asks something of its own.
"""

from __future__ import annotations

import re

# Clause boundaries after normalisation (punctuation is unified to ASCII).
_CLAUSE = re.compile(r"[,.;!?:]+")
# Where one question may end and another begin ...
_SPLIT = re.compile(r"[?!;.,]|以及|还有|另外|并且|同时|顺便问(?:一?下)?|再问(?:一?下)?")
_SPLIT_KEEP = re.compile(f"({_SPLIT.pattern})")
_WORD_JOIN = re.compile(r"以及|还有|另外|并且|同时|顺便问(?:一?下)?|再问(?:一?下)?")
# ... and where it may, when what it joins are whole questions or short noun phrases
# ("截止时间和联系电话"), not a subject of two nouns ("政务服务和行政审批属于哪个领域").
_JOIN = re.compile(r"和|及|跟")
# A clause asks something ("交到哪", "几份", "能不能"), in Chinese or English.
ASKS = re.compile(
    r"[?吗呢嘛么]|了解|想知道|想问|请问|咨询|介绍|几|多少|多久|多长|哪|什么|啥|谁|怎|如何|是否|能否|可否|何|"
    r"(.)[不没]\1|可不可以|属不属于|需不需要|有无|"
    r"\b(?:what|when|where|who|which|how|can|could|is|are|do|does|should|must)\b"
)
# A short noun phrase after an explicit joining word ("截止时间和联系电话") is a question too.
SHORT_PART = 6
# ... unless it describes the asker ("我们是社区", "本单位是协会"): that is context.
_CONTEXT = re.compile(r"^(?:我|咱|本|俺|贵|这边|我们|我单位|我司|我院|我校|我局|我中心)")
MAX_PARTS = 3


# A clause that only asks for confirmation of the one before it ("企业不能申报，是吗？").
CONFIRM_TAG = re.compile(r"^(?:是|对|对不对|是不是|是这样|是这样的|可以|行|好|没错|有没有)?(?:吗|吧|么|嘛|呢|不|没)?$")


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE.split(text) if c.strip()]


def focus(text: str) -> str:
    """The message from its first asking clause on (the whole, when none asks)."""
    parts = clauses(text)
    for i, clause in enumerate(parts):
        if ASKS.search(clause):
            if i and CONFIRM_TAG.match(clause):  # the claim being confirmed is the question
                i -= 1
            return ",".join(parts[i:]) if i else text
    return text


def question_parts(text: str) -> list[str]:
    """The separate questions of a message; one item when it asks one thing."""
    pieces: list[str] = []
    # Pieces that a joining word (和, 以及, 还有 …) ties to another: only they may be bare noun
    # phrases that ask ("截止时间和联系电话"); between commas, a short phrase sets the scene
    # ("我们是市体育馆,事业单位,请问……").
    joined_by_word: set[int] = set()
    chunks = _SPLIT_KEEP.split(text)
    for n in range(0, len(chunks), 2):
        piece = chunks[n].strip()
        if not piece:
            continue
        if pieces and CONFIRM_TAG.match(piece):  # "……，是吗": confirms the piece before, asks nothing new
            pieces[-1] += "," + piece
            continue
        word_before = n > 0 and _WORD_JOIN.fullmatch(chunks[n - 1])
        # A question mark after a bare phrase asks too ("截止时间?联系电话?").
        word_after = n + 1 < len(chunks) and (_WORD_JOIN.fullmatch(chunks[n + 1]) or chunks[n + 1] == "?")
        distributed = _distribute(piece)
        if distributed:
            pieces += distributed
            continue
        joined = [j.strip() for j in _JOIN.split(piece) if j.strip()]
        whole = len(joined) > 1 and (all(len(j) <= SHORT_PART for j in joined)
                                     or all(ASKS.search(j) for j in joined))
        start = len(pieces)
        pieces += joined if whole else [piece]
        if whole or word_before or word_after:
            joined_by_word.update(range(start, len(pieces)))
    if len(pieces) < 2:
        return [text]
    asking = [p for i, p in enumerate(pieces) if ASKS.search(p)
              or (len(p) <= SHORT_PART and i in joined_by_word and not _CONTEXT.match(p))]
    # Only short noun phrases and no real question: "截止时间和联系电话" is two questions,
    # but a phrase cut at 和 inside one question ("政务服务和行政审批") is not.
    if len(asking) < 2 or not any(ASKS.search(p) for p in pieces) and len(pieces) > 2:
        return [text]
    return asking[:MAX_PARTS]


_EACH = re.compile(r"^(?P<first>.{1,12}?)(?:和|及|跟|与)(?P<second>.{1,12}?)(?:分别|各自|各)(?P<ask>.+)$")


def _distribute(piece: str) -> list[str] | None:
    """"保证单位和指导单位分别填谁" -> ["保证单位填谁", "指导单位填谁"]: 分别 asks each in turn."""
    m = _EACH.match(piece)
    if m is None or not (ASKS.search(m.group("ask")) or m.group("ask").strip() in ("是", "为")):
        return None
    return [m.group("first") + m.group("ask") + "?", m.group("second") + m.group("ask") + "?"]
