"""The console front door: the same replies as Telegram, as plain text."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from knowledge.assistant import Assistant
from knowledge.reply import Button, Reply
from knowledge.selfcheck.application_form import build_application_form
from knowledge.selfcheck.flow import SelfCheckError

PROMPT = "问> "


def render(reply: Reply) -> str:
    """A reply as console text: the message, then numbered buttons to pick."""
    lines = [reply.text]
    if reply.buttons:
        lines.append("")
        lines += [f"  [{n}] {b.label}" for n, b in enumerate(reply.buttons, 1)]
    if reply.clauses:
        lines.append("  （输入“原文”查看所依据条款的全文）")
    return "\n".join(lines)


class ConsoleSession:
    """One console conversation: remembers the last buttons so "2" presses the second."""

    def __init__(self, assistant: Assistant, out_dir: Path | None = None) -> None:
        self.assistant = assistant
        self.buttons: tuple[Button, ...] = ()
        self.clauses: tuple[str, ...] = ()
        self.interview: dict[str, Any] | None = None  # self-check state while one is running
        self.finished: dict[str, Any] | None = None   # the last finished interview, for the 申请书
        self.awaiting_unit_name = False
        self.out_dir = out_dir or Path.cwd()

    def handle(self, text: str) -> str | None:
        """The console's answer to one line; None means the user wants to leave."""
        text = text.strip()
        a = self.assistant
        commands = {"/start": a.welcome, "/help": a.help, "/deadline": a.deadline, "/contact": a.contact}
        if self.awaiting_unit_name:
            return self._write_form(text)
        if text in ("/check", "资格自测"):
            return self._start_check()
        if self.interview is not None:
            return self._interview_step(text)
        if text in ("/quit", "/exit", "退出", "q"):
            return None
        if text in ("/form", "生成申请书") and self.finished is not None:
            self.awaiting_unit_name = True
            return "请输入单位名称（用于填写试点名称和单位名称；直接回车或输入“-”则留空）："
        if text in commands:
            return self._show(commands[text]())
        if text == "/faq":
            return self._faq()
        if text in ("原文", "/clause") and self.clauses:
            return "\n\n".join(a.clause_text(c) or "" for c in self.clauses)
        if text.isdigit() and 1 <= int(text) <= len(self.buttons):
            return self.press(self.buttons[int(text) - 1])
        return self._show(a.answer(text))

    def press(self, button: Button) -> str:
        kind, _, value = button.action.partition(":")
        a = self.assistant
        if kind == "ask":
            return self._show(a.answer_entry(value))
        if kind == "clause":
            return self._show(a.clause_reply(value))
        if kind == "topic":
            return self._topic(value)
        actions = {"faq": self._faq, "deadline": lambda: self._show(a.deadline()),
                   "contact": lambda: self._show(a.contact()), "help": lambda: self._show(a.help()),
                   "check": self._start_check}
        return actions.get(value, lambda: self._show(a.help()))()

    # -- the eligibility self-check ----------------------------------------------

    def _start_check(self) -> str:
        self.interview = self.assistant.selfcheck.start()
        self.buttons, self.clauses = (), ()
        return "资格自测开始（输入序号作答；“上一步”“重新开始”“退出”；“为什么”查看提问依据）。\n\n" + self._step_text()

    def _step_text(self) -> str:
        view = self.assistant.selfcheck.view(self.interview)
        return self.assistant.selfcheck.render_step(view)

    def _interview_step(self, text: str) -> str:
        check = self.assistant.selfcheck
        state = self.interview
        if text in ("退出", "/cancel", "/quit"):
            self.interview = None
            return "已退出资格自测。"
        if text in ("上一步", "返回"):
            self.interview = check.back(state)
            return self._step_text()
        if text in ("重新开始", "/restart"):
            return self._start_check()
        view = check.view(state)
        if text in ("为什么", "为什么问这个", "?", "？"):
            return check.render_help(view) + "\n\n" + self._step_text()
        reading = check.read_text(state, text)
        if reading.option_id is None:
            if reading.note:
                # Words the buttons cannot stand for (e.g. 乡镇 support): say why, ask again.
                return f"{reading.note}\n\n{self._step_text()}"
            # Not an answer: treat it as a question, then show where the user was.
            return render(self.assistant.answer(text)) + "\n\n——继续资格自测——\n" + self._step_text()
        try:
            state = check.answer(state, reading.option_id, view.step_id)
        except SelfCheckError as exc:
            return f"{exc}\n{self._step_text()}"
        if check.view(state) is not None:
            self.interview = state
            return f"{reading.note}\n\n{self._step_text()}"
        self.interview, self.finished = None, state
        verdict = check.verdict(state, self.assistant.today(), self.assistant.kb.meta)
        text = f"{reading.note}\n\n{check.render_verdict(verdict)}"
        if verdict.status != "ineligible":
            text += "\n\n输入“生成申请书”可得到预填的申请书（Word 文档）。"
        return text

    def _write_form(self, unit_name: str) -> str:
        self.awaiting_unit_name = False
        unit = unit_name.strip()
        unit = None if unit in ("", "-") else unit
        path = self.out_dir / f"申请书-{datetime.now():%Y%m%d-%H%M%S}.docx"
        build_application_form(self.assistant.selfcheck.form_answers(self.finished), unit, path)
        return f"申请书已生成：{path}\n未填写的栏目请按通知附件的样表补全。"

    def _faq(self) -> str:
        buttons = tuple(Button(name, f"topic:{tid}") for tid, name in self.assistant.topics())
        self.buttons, self.clauses = buttons, ()
        return "常见问题主题：\n" + "\n".join(f"  [{n}] {b.label}" for n, b in enumerate(buttons, 1))

    def _topic(self, topic_id: str) -> str:
        buttons = tuple(Button(q, f"ask:{fid}") for fid, q in self.assistant.topic_questions(topic_id))
        self.buttons, self.clauses = buttons + (Button("返回", "cmd:faq"),), ()
        return "\n".join(f"  [{n}] {b.label}" for n, b in enumerate(self.buttons, 1))

    def _show(self, reply: Reply) -> str:
        self.buttons, self.clauses = reply.buttons, reply.clauses
        return render(reply)


def run_console(assistant: Assistant, settings: Settings) -> int:
    session = ConsoleSession(assistant, settings.data_dir)
    interactive = sys.stdin.isatty()
    print(render(assistant.welcome()))
    print("（输入问题后回车；输入数字选择按钮；/help 帮助；/quit 退出）")
    while True:
        if interactive:
            try:
                line = input(PROMPT)
            except EOFError:
                break
        else:
            line = sys.stdin.readline()
            if not line:
                break
        if not line.strip() and not session.awaiting_unit_name:
            continue
        out = session.handle(line)
        if out is None:
            break
        print(out + "\n")
    print("再见！")
    return 0
