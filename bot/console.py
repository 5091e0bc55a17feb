"""The console front door: the same replies as Telegram, as plain text."""

from __future__ import annotations

import sys

from bot.config import Settings
from knowledge.assistant import Assistant
from knowledge.reply import Button, Reply

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

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.buttons: tuple[Button, ...] = ()
        self.clauses: tuple[str, ...] = ()

    def handle(self, text: str) -> str | None:
        """The console's answer to one line; None means the user wants to leave."""
        text = text.strip()
        a = self.assistant
        commands = {"/start": a.welcome, "/help": a.help, "/deadline": a.deadline, "/contact": a.contact}
        if text in ("/quit", "/exit", "退出", "q"):
            return None
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
                   "check": lambda: "资格自测：请输入 /check 开始。"}
        return actions.get(value, lambda: self._show(a.help()))()

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
    session = ConsoleSession(assistant)
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
        if not line.strip():
            continue
        out = session.handle(line)
        if out is None:
            break
        print(out + "\n")
    print("再见！")
    return 0
