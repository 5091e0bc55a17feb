"""The eligibility self-check: a staff-editable question flow and a pure engine over it.

The flow lives in data/selfcheck.yaml; load_flow() validates it and reports any
problem as a KnowledgeError naming file, entry and field. SelfCheck runs the
interview over a plain, JSON-serialisable state dict, so a front door (console,
Telegram) can store it between messages and across restarts. Nothing here knows
about Telegram, and the date is always passed in.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from knowledge.answering import compose
from knowledge.answering.normalise import basic_normalise
from knowledge.errors import KnowledgeError
from knowledge.loader import UNFINDABLE_CITATION, KnowledgeBase, Meta, read_yaml_file

# Whitespace between two non-ASCII characters (CJK, full-width punctuation).
_CJK_GAP = re.compile(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])")
_QUOTED = re.compile(r"“([^”]+)”")
DEFAULT_PATH = Path(__file__).parent.parent / "data" / "selfcheck.yaml"
# Ids end up in Telegram callback data ("sc:<step>:<option>", at most 64 bytes).
ID_PATTERN = re.compile(r"^[a-z0-9_]{1,24}$")
MEANINGS = ("yes", "no", "unsure")
STATUSES = ("eligible", "ineligible", "caution")
ELIGIBLE, INELIGIBLE, CAUTION = STATUSES
# The caution verdict's wording when a necessary condition is still open (status stays caution).
OPEN = "open"


# -- the flow (what staff edit) ------------------------------------------------------


@dataclass(frozen=True)
class Option:
    id: str
    label: str
    fails: tuple[str, ...] = ()
    caution: tuple[str, ...] = ()
    next: str | None = None
    verdict_now: bool = False
    channel: str | None = None
    means: str | None = None
    aliases: tuple[str, ...] = ()
    form: str | None = None
    pilot_name: str | None = None
    # A typed answer naming one of this option's words is read as this option even when it also
    # names another option's ("发生过一起轻微事故" is the minor-accident option, not 发生过).
    priority: bool = False


@dataclass(frozen=True)
class Clarify:
    """Typed words a step's buttons cannot stand for (乡镇 support is not 县级以上 support):
    no option is chosen; the text is shown and the question asked again."""

    words: tuple[str, ...]
    text: str
    clause: str


@dataclass(frozen=True)
class Step:
    id: str
    question: str
    help: str
    clauses: tuple[str, ...]
    options: tuple[Option, ...]
    form_key: str | None = None
    clarify: tuple[Clarify, ...] = ()

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True)
class Condition:
    """A failed condition (conditions) or a point to watch (cautions). An open caution is a
    necessary condition not yet known to be met: it must be met before applying."""

    id: str
    text: str
    clause: str
    open: bool = False


@dataclass(frozen=True)
class Channel:
    id: str
    name: str           # who recommends, in whose name
    clause: str
    quota: str
    quota_clause: str


@dataclass(frozen=True)
class Material:
    """One checklist item; each part is cited where its wording stands."""

    parts: tuple[tuple[str, str], ...]   # (text, clause id)


@dataclass(frozen=True)
class Flow:
    steps: tuple[Step, ...]
    conditions: dict[str, Condition]
    cautions: dict[str, Condition]
    channels: dict[str, Channel]
    materials: tuple[Material, ...]
    verdicts: dict[str, tuple[str, str]]  # status (and "open") -> (title, summary)
    duration: Condition
    selection: tuple[str, tuple[str, ...]]
    typed_answers: dict[str, tuple[str, ...]]
    version: str
    source: str = "selfcheck.yaml"

    def step(self, step_id: str) -> Step:
        return self.steps[self.index(step_id)]

    def index(self, step_id: str) -> int:
        for n, step in enumerate(self.steps):
            if step.id == step_id:
                return n
        raise KeyError(step_id)

    def has_step(self, step_id: str) -> bool:
        return any(s.id == step_id for s in self.steps)


def load_flow(path: str | Path | None, clause_ids: Collection[str]) -> Flow:
    """Read and validate the self-check YAML (default: the embedded one).

    clause_ids are the notice's clause ids; every citation must be one of them. Given
    KnowledgeBase.clauses (a mapping to clauses), every cited clause must also have text,
    and every wording a material quotes must stand in the clause it cites.
    Any problem raises KnowledgeError.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    file = path.name
    doc, content = read_yaml_file(path)
    texts = {cid: getattr(c, "text", None) for cid, c in clause_ids.items()} if isinstance(clause_ids, Mapping) else {}
    return _Parser(file, set(clause_ids), texts).flow(doc, hashlib.sha256(content).hexdigest()[:12])


class _Parser:
    """Validation of one file; every error names file, entry and field."""

    def __init__(self, file: str, clause_ids: set[str], texts: Mapping[str, str | None] | None = None) -> None:
        self.file = file
        self.clause_ids = clause_ids
        self.texts = dict(texts or {})

    def error(self, message: str, entry: str | None = None, field: str | None = None) -> KnowledgeError:
        return KnowledgeError(self.file, message, entry=entry, field=field)

    # small typed readers

    def mapping(self, value: Any, entry: str | None, field: str) -> dict:
        if not isinstance(value, dict):
            raise self.error("应为键值映射", entry, field)
        return value

    def items(self, doc: dict, key: str) -> list[dict]:
        value = doc.get(key)
        if not isinstance(value, list) or not value:
            raise self.error(f"缺少 {key} 列表，或列表为空", field=key)
        for n, item in enumerate(value, 1):
            if not isinstance(item, dict):
                raise self.error(f"第 {n} 项应为键值映射", entry=f"{key} 第 {n} 项", field=key)
        return value

    def text(self, item: dict, key: str, entry: str | None) -> str:
        value = item.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.error("必填，且应为非空文字", entry, key)
        if UNFINDABLE_CITATION.search(value):
            raise self.error("引用了读者找不到的“第一条/第三条第N款（项）”，请写成如 通知第三条“具有一定的标准化工作基础……”",
                             entry, key)
        # A folded YAML block (>-) turns line breaks into spaces, which Chinese text must not have.
        return _CJK_GAP.sub("", value.strip())

    def optional_text(self, item: dict, key: str, entry: str) -> str | None:
        return self.text(item, key, entry) if item.get(key) is not None else None

    def strings(self, item: dict, key: str, entry: str, *, minimum: int = 0, single_ok: bool = False) -> tuple[str, ...]:
        value = item.get(key)
        if value is None:
            value = []
        elif single_ok and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.error("应为列表", entry, key)
        out = []
        for n, s in enumerate(value, 1):
            if isinstance(s, int | float) and not isinstance(s, bool):
                s = str(s)
            if not isinstance(s, str) or not s.strip():
                # A bare yes/no/on/off in YAML turns into true/false: ask for quotes.
                hint = "（yes、no 等词请加英文引号）" if isinstance(s, bool) else ""
                raise self.error(f"第 {n} 项为空或不是文字{hint}", entry, key)
            out.append(s.strip())
        if len(out) < minimum:
            raise self.error(f"至少需要 {minimum} 项，现有 {len(out)} 项", entry, key)
        return tuple(out)

    def ident(self, item: dict, entry: str) -> str:
        value = item.get("id")
        if isinstance(value, bool):
            raise self.error("编号不能是 yes/no/true/false 这类词（如需使用请加英文引号）", entry, "id")
        ident = self.text(item, "id", entry)
        if not ID_PATTERN.match(ident):
            raise self.error("编号只能用小写英文、数字和下划线，且不超过 24 个字符", entry, "id")
        return ident

    def clause(self, cid: str, entry: str, field: str) -> str:
        if cid not in self.clause_ids:
            raise self.error(f"引用的条款 {cid} 在 notice.yaml 中不存在", entry, field)
        if self.texts and not self.texts.get(cid):
            raise self.error(f"引用的条款 {cid} 没有正文，读者看不到依据；请引用其下有正文的条款", entry, field)
        return cid

    # sections

    def flow(self, doc: dict, version: str) -> Flow:
        conditions = self.conditions(doc, "conditions")
        cautions = self.conditions(doc, "cautions")
        channels = self.channels(doc)
        steps = self.steps(doc, conditions, cautions, channels)
        materials = tuple(self.material(m, f"materials 第 {n} 项") for n, m in enumerate(self.items(doc, "materials"), 1))
        verdicts_doc = self.mapping(doc.get("verdicts"), None, "verdicts")
        verdicts = {}
        for status in (*STATUSES, OPEN):
            v = self.mapping(verdicts_doc.get(status), f"verdicts.{status}", status)
            verdicts[status] = (self.text(v, "title", f"verdicts.{status}"), self.text(v, "summary", f"verdicts.{status}"))
        d = self.mapping(doc.get("duration"), None, "duration")
        duration = Condition("duration", self.text(d, "text", "duration"),
                             self.clause(self.text(d, "clause", "duration"), "duration", "clause"))
        s = self.mapping(doc.get("selection"), None, "selection")
        selection = (self.text(s, "text", "selection"),
                     tuple(self.clause(c, "selection", "clauses")
                           for c in self.strings(s, "clauses", "selection", minimum=1)))
        typed_doc = self.mapping(doc.get("typed_answers"), None, "typed_answers")
        typed = {m: self.strings(typed_doc, m, "typed_answers", minimum=1) for m in MEANINGS}
        return Flow(steps, conditions, cautions, channels, materials, verdicts, duration, selection, typed,
                    version, self.file)

    def material(self, item: dict, entry: str) -> Material:
        """{text, clause}, or {parts: [{text, clause}, ...]} when wordings stand in different clauses."""
        raw = item.get("parts")
        if raw is None:
            raw = [item]
        elif not isinstance(raw, list) or not raw or not all(isinstance(p, dict) for p in raw):
            raise self.error("应为非空列表，每项写 text 和 clause", entry, "parts")
        parts = tuple((self.text(p, "text", entry), self.clause(self.text(p, "clause", entry), entry, "clause"))
                      for p in raw)
        for text, cid in parts:
            for quote in _QUOTED.findall(text):
                if cid in self.texts and quote not in (self.texts[cid] or ""):
                    raise self.error(f"引用的原文“{quote}”不在条款 {cid} 中：请分别注明各说法的出处", entry, "parts")
        return Material(parts)

    def conditions(self, doc: dict, key: str) -> dict[str, Condition]:
        out: dict[str, Condition] = {}
        for n, item in enumerate(self.items(doc, key), 1):
            cid = self.ident(item, f"{key} 第 {n} 项")
            if cid in out:
                raise self.error("编号重复", cid, "id")
            is_open = item.get("open", False)
            if not isinstance(is_open, bool) or (is_open and key != "cautions"):
                raise self.error("open 只用于 cautions，且应为 true 或 false", cid, "open")
            out[cid] = Condition(cid, self.text(item, "text", cid),
                                 self.clause(self.text(item, "clause", cid), cid, "clause"), is_open)
        return out

    def clarify(self, item: dict, sid: str) -> tuple[Clarify, ...]:
        raw = item.get("clarify") or []
        if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
            raise self.error("应为列表，每项写 words、text、clause", sid, "clarify")
        entry = f"{sid}.clarify"
        return tuple(Clarify(self.strings(c, "words", entry, minimum=1), self.text(c, "text", entry),
                             self.clause(self.text(c, "clause", entry), entry, "clause")) for c in raw)

    def channels(self, doc: dict) -> dict[str, Channel]:
        out: dict[str, Channel] = {}
        for n, item in enumerate(self.items(doc, "channels"), 1):
            cid = self.ident(item, f"channels 第 {n} 项")
            if cid in out:
                raise self.error("编号重复", cid, "id")
            out[cid] = Channel(cid, self.text(item, "name", cid), self.clause(self.text(item, "clause", cid), cid, "clause"),
                               self.text(item, "quota", cid),
                               self.clause(self.text(item, "quota_clause", cid), cid, "quota_clause"))
        return out

    def steps(self, doc: dict, conditions: dict, cautions: dict, channels: dict) -> tuple[Step, ...]:
        raw = self.items(doc, "steps")
        ids: list[str] = []
        for n, item in enumerate(raw, 1):
            sid = self.ident(item, f"steps 第 {n} 项")
            if sid in ids:
                raise self.error("题目编号重复", sid, "id")
            ids.append(sid)
        steps = []
        for pos, (sid, item) in enumerate(zip(ids, raw, strict=True)):
            question = self.text(item, "question", sid)
            help_text = self.text(item, "help", sid)
            clauses = tuple(self.clause(c, sid, "clauses") for c in self.strings(item, "clauses", sid, minimum=1))
            form_key = self.optional_text(item, "form_key", sid)
            options_raw = item.get("options")
            if not isinstance(options_raw, list) or len(options_raw) < 2:
                raise self.error("至少需要 2 个选项", sid, "options")
            options: list[Option] = []
            for n, o in enumerate(options_raw, 1):
                options.append(self.option(o, sid, n, ids[pos + 1:], conditions, cautions, channels))
            for attr, what in (("id", "选项编号"), ("label", "选项文字")):
                values = [getattr(o, attr) for o in options]
                dup = next((v for v in values if values.count(v) > 1), None)
                if dup is not None:
                    raise self.error(f"{what}“{dup}”重复", sid, "options")
            for meaning in MEANINGS:
                if sum(o.means == meaning for o in options) > 1:
                    raise self.error(f"means: {meaning} 只能用于一个选项", sid, "options")
            steps.append(Step(sid, question, help_text, clauses, tuple(options), form_key, self.clarify(item, sid)))
        return tuple(steps)

    def option(self, o: Any, sid: str, n: int, later: list[str], conditions: dict, cautions: dict,
               channels: dict) -> Option:
        if not isinstance(o, dict):
            raise self.error(f"第 {n} 个选项应为键值映射", sid, "options")
        oid = self.ident(o, f"{sid} 第 {n} 个选项")
        entry = f"{sid}.{oid}"
        label = self.text(o, "label", entry)
        fails = self.strings(o, "fails", entry, single_ok=True)
        for c in fails:
            if c not in conditions:
                raise self.error(f"条件 {c} 未在 conditions 中定义", entry, "fails")
        caution = self.strings(o, "caution", entry, single_ok=True)
        for c in caution:
            if c not in cautions:
                raise self.error(f"注意事项 {c} 未在 cautions 中定义", entry, "caution")
        target = self.optional_text(o, "next", entry)
        if target is not None and target not in later:
            # Only forward jumps: the interview can never loop.
            raise self.error(f"跳转目标 {target} 不存在或不在本题之后", entry, "next")
        verdict_now = o.get("verdict_now", False)
        if not isinstance(verdict_now, bool):
            raise self.error("应为 true 或 false", entry, "verdict_now")
        if verdict_now and target is not None:
            raise self.error("verdict_now 与 next 不能同时使用", entry, "next")
        channel = self.optional_text(o, "channel", entry)
        if channel is not None and channel not in channels:
            raise self.error(f"推荐渠道 {channel} 未在 channels 中定义", entry, "channel")
        means = o.get("means")
        if means is not None and means not in MEANINGS:
            raise self.error("只能是 \"yes\"、\"no\" 或 unsure（yes、no 请加英文引号）", entry, "means")
        priority = o.get("priority", False)
        if not isinstance(priority, bool):
            raise self.error("应为 true 或 false", entry, "priority")
        return Option(
            oid, label, fails, caution, target, verdict_now, channel, means,
            self.strings(o, "aliases", entry), self.optional_text(o, "form", entry),
            self.optional_text(o, "pilot_name", entry), priority,
        )


# -- the engine -----------------------------------------------------------------------


class SelfCheckError(ValueError):
    """Base of the engine's refusals; the message is safe to show a user."""


class InvalidAnswer(SelfCheckError):
    """The option is not one of the current step's (e.g. an old button pressed), or the check is over."""


class StaleState(SelfCheckError):
    """The state is malformed or was made by another version of the flow: start again."""


class Reason(NamedTuple):
    text: str
    clause_id: str
    clause_label: str
    id: str


@dataclass(frozen=True)
class StepView:
    step_id: str
    number: int          # 1-based position in this interview
    total: int           # questions this interview will ask if no later answer skips one
    question: str
    options: tuple[tuple[str, str], ...]   # (option id, label)
    help: str
    clauses: tuple[str, ...]
    clause_labels: tuple[str, ...]
    can_back: bool


@dataclass(frozen=True)
class Verdict:
    status: str                      # eligible / ineligible / caution
    title: str                       # 符合申报条件 / 不符合申报条件 / 基本符合，但需注意
    summary: str
    reasons: tuple[Reason, ...]      # failed conditions (empty unless ineligible)
    cautions: tuple[Reason, ...]     # points to watch (may accompany any status but eligible)
    channel: str                     # who recommends, in whose name ("" if never asked)
    quota: str
    channel_id: str | None
    materials: tuple[str, ...]
    deadline: str
    deadline_passed: bool
    deadline_note: str               # a warning to put first when the deadline has passed, else ""
    duration: str
    selection: str
    contact: str
    open_items: tuple[Reason, ...] = ()   # the cautions that are necessary conditions not yet met

    def as_record(self) -> dict[str, Any]:
        """Plain data for the record of a finished interview."""
        return {"status": self.status, "failed": [r.id for r in self.reasons],
                "cautions": [r.id for r in self.cautions], "channel": self.channel_id}


class Reading(NamedTuple):
    """How a typed answer was read: the option (or None), and what to tell the user first —
    "您选择的是：……" when an option was read, the clarification when the question is asked again."""

    option_id: str | None
    note: str


_STRIP = re.compile(r"[\s?!.,;:()\[\]\"'<>《》（）【】、。，！？；：…~\-]+")
_NUMBER = re.compile(r"^(?:第)?(\d{1,2})(?:个|项|号|题)?$")
_NEGATORS = "没无未不非"


def _cited(reason: Reason) -> str:
    return f"{reason.text.rstrip('。')}（依据：{reason.clause_label}）。"


def _norm(text: str) -> str:
    return _STRIP.sub("", basic_normalise(text))


class SelfCheck:
    """Runs the interview. State: {"flow_version", "step", "answers", "history", "done"}."""

    def __init__(self, flow: Flow, clause_labels: Mapping[str, str] | None = None) -> None:
        self.flow = flow
        self.clause_labels = dict(clause_labels or {})

    def label(self, clause_id: str) -> str:
        return self.clause_labels.get(clause_id, clause_id)

    # state transitions ---------------------------------------------------------

    def start(self) -> dict[str, Any]:
        return {"flow_version": self.flow.version, "step": self.flow.steps[0].id,
                "answers": {}, "history": [], "done": False}

    def restart(self) -> dict[str, Any]:
        return self.start()

    def is_current(self, state: Any) -> bool:
        """False when a stored state cannot be continued (other flow version, malformed)."""
        try:
            self._check(state)
        except StaleState:
            return False
        return True

    def answer(self, state: dict[str, Any], option_id: str, step_id: str | None = None) -> dict[str, Any]:
        """The state after choosing option_id. Pass step_id (e.g. from the button's data)
        so an old button of another step is refused instead of answering the current one."""
        self._check(state)
        if state["done"]:
            raise InvalidAnswer("自测已经结束，如需重新自测请重新开始。")
        step = self.flow.step(state["step"])
        if step_id is not None and step_id != step.id:
            raise InvalidAnswer("这个按钮属于之前的问题，请回答当前的问题。")
        option = step.option(option_id)
        if option is None:
            raise InvalidAnswer("这个选项不属于当前的问题，请从当前问题的选项中选择。")
        new = copy.deepcopy(state)
        new["answers"][step.id] = option.id
        new["history"].append(step.id)
        following = self._following(step, option)
        new["step"] = following
        new["done"] = following is None
        return new

    def back(self, state: dict[str, Any]) -> dict[str, Any]:
        """The state before the last answer (unchanged at the first question)."""
        self._check(state)
        new = copy.deepcopy(state)
        if not new["history"]:
            return new
        previous = new["history"].pop()
        new["answers"].pop(previous, None)
        new["step"] = previous
        new["done"] = False
        return new

    def _following(self, step: Step, option: Option) -> str | None:
        if option.verdict_now:
            return None
        if option.next is not None:
            return option.next
        n = self.flow.index(step.id) + 1
        return self.flow.steps[n].id if n < len(self.flow.steps) else None

    def _check(self, state: Any) -> None:
        """Refuse anything but a well-formed state of this flow version."""
        stale = StaleState("自测问卷已更新或记录已失效，请重新开始自测。")
        if not isinstance(state, dict) or state.get("flow_version") != self.flow.version:
            raise stale
        answers, history, done, step = state.get("answers"), state.get("history"), state.get("done"), state.get("step")
        if not isinstance(answers, dict) or not isinstance(history, list) or not isinstance(done, bool):
            raise stale
        if set(answers) != set(history) or len(history) != len(set(history)):
            raise stale
        for sid, oid in answers.items():
            if not self.flow.has_step(sid) or self.flow.step(sid).option(oid) is None:
                raise stale
        if done != (step is None) or (step is not None and not self.flow.has_step(step)):
            raise stale

    # what to show --------------------------------------------------------------

    def view(self, state: dict[str, Any]) -> StepView | None:
        """The current question, or None when the interview is over (then ask verdict())."""
        self._check(state)
        if state["done"]:
            return None
        step = self.flow.step(state["step"])
        asked = len(state["history"])
        remaining = len(self.flow.steps) - self.flow.index(step.id)
        return StepView(
            step_id=step.id, number=asked + 1, total=asked + remaining, question=step.question,
            options=tuple((o.id, o.label) for o in step.options), help=step.help, clauses=step.clauses,
            clause_labels=tuple(self.label(c) for c in step.clauses), can_back=asked > 0,
        )

    @staticmethod
    def render_step(view: StepView) -> str:
        """The question as plain text with numbered options (for typing a number)."""
        lines = [f"（{view.number}/{view.total}）{view.question}"]
        lines += [f"{n}. {label}" for n, (_, label) in enumerate(view.options, 1)]
        return "\n".join(lines)

    @staticmethod
    def render_help(view: StepView) -> str:
        """The "为什么问这个" text with its citation."""
        return f"为什么问这个：{view.help}\n依据：{'、'.join(view.clause_labels)}"

    def match_text(self, state: dict[str, Any], text: str) -> str | None:
        """The option a typed answer means, or None when unclear (then ask to press a button)."""
        return self.read_text(state, text).option_id

    def read_text(self, state: dict[str, Any], text: str) -> Reading:
        """A typed answer read the way the buttons mean it.

        Tried in order: option number; the step's clarify words (the buttons cannot stand
        for them: ask again, saying why); a label or alias typed exactly; a label or alias
        inside the text (a priority option's first, then the longest; negated ones skipped);
        an "I'm not sure" phrase; a yes/no word at the start; the text inside one label.
        """
        self._check(state)
        if state["done"]:
            return Reading(None, "")
        step = self.flow.step(state["step"])
        t = _norm(text)
        if not t:
            return Reading(None, "")
        number = _NUMBER.match(t)
        if number:
            n = int(number.group(1))
            return self._read(step.options[n - 1] if 1 <= n <= len(step.options) else None)
        for clarify in step.clarify:
            if any(w and w in t for w in map(_norm, clarify.words)):
                return Reading(None, f"{clarify.text.rstrip('。')}（依据：{self.label(clarify.clause)}）。")
        return self._read(step.option(self._match(step, t) or ""))

    @staticmethod
    def _read(option: Option | None) -> Reading:
        return Reading(option.id, f"您选择的是：{option.label}") if option else Reading(None, "")

    def _match(self, step: Step, t: str) -> str | None:
        terms = [(o, _norm(term)) for o in step.options for term in (o.label, *o.aliases)]
        terms = [(o, term) for o, term in terms if term]
        exact = {o.id for o, term in terms if term == t}
        if len(exact) == 1:
            return exact.pop()
        inside = [((o.priority, len(term)), o.id) for o, term in terms if self._contains(t, term)]
        if inside:
            strongest = max(rank for rank, _ in inside)
            best = {oid for rank, oid in inside if rank == strongest}
            if len(best) == 1:
                return best.pop()
        by_meaning = {o.means: o.id for o in step.options if o.means}
        typed = {m: [_norm(w) for w in self.flow.typed_answers[m]] for m in MEANINGS}
        if "unsure" in by_meaning and any(w and w in t for w in typed["unsure"]):
            return by_meaning["unsure"]
        prefixes = [(len(w), m) for m in ("yes", "no") for w in typed[m] if w and t.startswith(w)]
        if prefixes:
            longest = max(length for length, _ in prefixes)
            meanings = {m for length, m in prefixes if length == longest}
            if len(meanings) == 1 and (m := meanings.pop()) in by_meaning:
                return by_meaning[m]
        if len(t) >= 2:
            within = {o.id for o, term in terms if t in term}
            if len(within) == 1:
                return within.pop()
        return None

    @staticmethod
    def _contains(text: str, term: str) -> bool:
        """term occurs in text, and not right after a negating character ("没有不良记录")."""
        start = text.find(term)
        while start != -1:
            if start == 0 or text[start - 1] not in _NEGATORS or term[0] in _NEGATORS:
                return True
            start = text.find(term, start + 1)
        return False

    # results ----------------------------------------------------------------------

    def _chosen(self, state: dict[str, Any]) -> list[tuple[Step, Option]]:
        out = []
        for sid in state["history"]:
            step = self.flow.step(sid)
            option = step.option(state["answers"][sid])
            assert option is not None  # _check guarantees it
            out.append((step, option))
        return out

    def _reason(self, condition: Condition) -> Reason:
        return Reason(condition.text, condition.clause, self.label(condition.clause), condition.id)

    def verdict(self, state: dict[str, Any], today: date, meta: Meta) -> Verdict:
        """The finished interview's verdict. Raises InvalidAnswer if it is not finished."""
        self._check(state)
        if not state["done"]:
            raise InvalidAnswer("自测尚未完成，请先回答完所有问题。")
        failed: list[str] = []
        watch: list[str] = []
        channel: Channel | None = None
        for _, option in self._chosen(state):
            failed += [c for c in option.fails if c not in failed]
            watch += [c for c in option.caution if c not in watch]
            if option.channel is not None:
                channel = self.flow.channels[option.channel]
        status = INELIGIBLE if failed else CAUTION if watch else ELIGIBLE
        open_ids = [c for c in watch if self.flow.cautions[c].open]
        # A necessary condition not yet met is not "nothing wrong found": say which are open.
        title, summary = self.flow.verdicts[OPEN if status == CAUTION and open_ids else status]
        cite = self._cite
        meta_year = meta.notice_date.year
        return Verdict(
            status=status, title=title, summary=summary,
            reasons=tuple(self._reason(self.flow.conditions[c]) for c in failed),
            cautions=tuple(self._reason(self.flow.cautions[c]) for c in watch),
            channel=f"{channel.name}（{cite(channel.clause)}）" if channel else "",
            quota=f"推荐名额：{channel.quota}（{cite(channel.quota_clause)}）" if channel else "",
            channel_id=channel.id if channel else None,
            materials=tuple("；".join(f"{text}（{cite(clause)}）" for text, clause in m.parts)
                            for m in self.flow.materials),
            # The notice says "5月20日前"; the year is the date line's, so it is said apart.
            deadline=(f"通知要求“{meta.deadline_wording}”报送（{cite(meta.deadline_clause)}；通知正文没有写年份，"
                      f"按落款日期为{meta_year}年）。{compose.deadline_status(meta, today)}"),
            deadline_passed=today > meta.deadline,
            deadline_note=(f"请注意：本批申报已于{compose.cn_date(meta.deadline)}截止（逾期不再受理），"
                           "以下按通知说明申报办法，供参考。") if today > meta.deadline else "",
            duration=f"{self.flow.duration.text}（{cite(self.flow.duration.clause)}）",
            selection=f"{self.flow.selection[0]}（{cite(*self.flow.selection[1])}）",
            contact=f"{compose.contact_line(meta)}。",
            open_items=tuple(self._reason(self.flow.cautions[c]) for c in open_ids),
        )

    def _cite(self, *clause_ids: str) -> str:
        return "依据：" + "、".join(self.label(c) for c in clause_ids)

    @staticmethod
    def render_verdict(verdict: Verdict) -> str:
        """The verdict as one plain-text message in Simplified Chinese."""
        lines = [f"【自测结论】{verdict.title}", verdict.summary]
        if verdict.status == INELIGIBLE:
            lines += [f"{n}. {_cited(r)}" for n, r in enumerate(verdict.reasons, 1)]
            if verdict.cautions:
                lines.append("另需注意：")
                lines += [f"· {_cited(r)}" for r in verdict.cautions]
            lines += ["", f"申报时间：{verdict.deadline}",
                      f"如情况有变或对以上判断有疑问，请咨询{verdict.contact}"]
            return "\n".join(lines)
        others = [r for r in verdict.cautions if r not in verdict.open_items]
        if verdict.open_items:
            lines += [f"{n}. {_cited(r)}" for n, r in enumerate(verdict.open_items, 1)]
            if others:
                lines.append("另需注意：")
                lines += [f"· {_cited(r)}" for r in others]
        else:
            lines += [f"{n}. {_cited(r)}" for n, r in enumerate(others, 1)]
        if verdict.deadline_note:
            lines += ["", verdict.deadline_note]
        lines += ["", "下一步怎么做：", f"一、推荐：{verdict.channel}"]
        if verdict.quota:
            lines.append(f"　　{verdict.quota}")
        lines.append("二、准备材料：")
        lines += [f"　{n}）{m}" for n, m in enumerate(verdict.materials, 1)]
        lines += [f"三、申报时间：{verdict.deadline}", f"四、试点周期：{verdict.duration}。",
                  f"五、{verdict.selection}。", "", f"联系：{verdict.contact}"]
        return "\n".join(lines)

    # plain data for recording and for the application form --------------------------

    def summary_of_answers(self, state: dict[str, Any]) -> dict[str, dict[str, str]]:
        """{step id: {"question", "option", "label"}} in the order answered."""
        self._check(state)
        return {step.id: {"question": step.question, "option": option.id, "label": option.label}
                for step, option in self._chosen(state)}

    def form_answers(self, state: dict[str, Any]) -> dict[str, str]:
        """What the 申请书 can be pre-filled with: keys org_type, field (the steps'
        form_key), pilot_name and channel, each present only when known."""
        self._check(state)
        out: dict[str, str] = {}
        for step, option in self._chosen(state):
            # An option with no pilot_name (e.g. 其他领域) names no field the form could use.
            if step.form_key and not (step.form_key == "field" and option.pilot_name is None):
                out[step.form_key] = option.form or option.label
            if option.pilot_name:
                out["pilot_name"] = option.pilot_name
            if option.channel is not None:
                out["channel"] = self.flow.channels[option.channel].name
        return out


def load_selfcheck(kb: KnowledgeBase, path: str | Path | None = None) -> SelfCheck:
    """The flow beside kb's own YAML (the embedded one when that folder has none),
    or the given file, validated against kb's clauses, with their labels."""
    if path is None:
        beside = kb.source_dir / DEFAULT_PATH.name
        path = beside if beside.exists() else None
    return SelfCheck(load_flow(path, kb.clauses), {cid: c.label for cid, c in kb.clauses.items()})
