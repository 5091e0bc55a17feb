"""Command line: `python -m bot [chat|ask|clause|kb check|report|unanswered|telegram]`.

With no command: the Telegram bot when TELEGRAM_BOT_TOKEN is set, otherwise
the console chat on the embedded knowledge base.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import date

from bot.config import ConfigError, Settings
from knowledge.errors import KnowledgeError

log = logging.getLogger("bot")


def _today_from(value: str | None) -> Callable[[], date]:
    """A fixed clock when --today / PILOT_TODAY is given (for testing deadline answers)."""
    value = value or os.environ.get("PILOT_TODAY", "").strip() or None
    if value is None:
        return date.today
    try:
        fixed = date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"日期应写作 YYYY-MM-DD，现为 {value!r}") from None
    return lambda: fixed


def knowledge_dir(args: argparse.Namespace, settings: Settings) -> str | None:
    """--data-dir, else KNOWLEDGE_DIR, else None (the knowledge base shipped with the package)."""
    chosen = getattr(args, "data_dir", None) or settings.knowledge_dir
    return str(chosen) if chosen is not None else None


def load_assistant(args: argparse.Namespace, settings: Settings):  # -> Assistant (import kept lazy)
    from knowledge.answering.embedding import embedder_status
    from knowledge.assistant import Assistant

    assistant = Assistant.load(settings.index_path, knowledge_dir(args, settings),
                               _today_from(getattr(args, "today", None)))
    # Said once at start: without the model, answers rest on word matching alone.
    (log.info if assistant.semantic else log.warning)("semantic model: %s", embedder_status())
    return assistant


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    assistant = load_assistant(args, settings)
    if args.batch:
        out = sys.stdout
        for line in sys.stdin:
            question = line.rstrip("\r\n")
            reply = assistant.answer(question)
            out.write(json.dumps(reply.to_json(question), ensure_ascii=False) + "\n")
            out.flush()
        return 0
    if not args.question:
        print("请在 ask 后面写上问题，例如：python -m bot ask \"申报截止时间是什么时候？\"", file=sys.stderr)
        return 2
    from bot.console import render

    print(render(assistant.answer(" ".join(args.question))))
    return 0


def cmd_clause(args: argparse.Namespace, settings: Settings) -> int:
    assistant = load_assistant(args, settings)
    text = assistant.clause_text(args.clause_id)
    if text is None:
        known = "、".join(assistant.kb.clauses)
        print(f"没有编号为“{args.clause_id}”的条款。可用编号：{known}", file=sys.stderr)
        return 1
    print(text)
    return 0


def cmd_kb_check(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.answering.classifier import classifier_status, load_classifier
    from knowledge.answering.decide import load_policy
    from knowledge.answering.embedding import embedder_status
    from knowledge.answering.engine import classifier_path
    from knowledge.assistant import default_embedder
    from knowledge.loader import load_knowledge
    from knowledge.selfcheck.flow import load_selfcheck

    kb = load_knowledge(knowledge_dir(args, settings))
    selfcheck = load_selfcheck(kb)
    load_policy(semantic=True), load_policy(semantic=False)  # a broken policy.yaml is refused here too
    embedder = default_embedder()
    covered = sum(e.covered for e in kb.entries.values())
    print(f"知识库检查通过：{len(kb.clauses)} 个条款，{covered} 个问答条目，"
          f"{len(kb.entries) - covered} 个“通知未涉及”条目，{len(kb.vocabulary.synonyms)} 组同义词，"
          f"资格自测 {len(selfcheck.flow.steps)} 步。")
    print(f"语义模型：{embedder_status()}")
    if embedder is not None:
        classifier = load_classifier(classifier_path(kb), embedder.name, embedder.dim)
        print(f"条目分类器：{classifier_status(classifier, list(kb.entries))}")
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.console import run_console

    return run_console(load_assistant(args, settings), settings)


def cmd_telegram(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.token:
        print("未设置 TELEGRAM_BOT_TOKEN：请向 @BotFather 申请机器人令牌后设置该环境变量（或写入 .env）。",
              file=sys.stderr)
        return 2
    assistant = load_assistant(args, settings)  # validate the knowledge base before going online
    from bot.telegram_app import run

    return run(settings, assistant)


def cmd_default(args: argparse.Namespace, settings: Settings) -> int:
    return cmd_telegram(args, settings) if settings.token else cmd_chat(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="鄂质监标函〔2016〕76号 申报咨询助手")
    parser.add_argument("--data-dir", help="知识库 YAML 所在目录（默认：设置 KNOWLEDGE_DIR，否则内置知识库）")
    parser.add_argument("--today", help="按此日期（YYYY-MM-DD）计算截止状态，用于测试")
    parser.set_defaults(func=cmd_default)
    sub = parser.add_subparsers(dest="command")

    ask = sub.add_parser("ask", help="回答一个问题；--batch 时逐行读取标准输入，逐行输出 JSON")
    ask.add_argument("question", nargs="*")
    ask.add_argument("--batch", action="store_true")
    ask.set_defaults(func=cmd_ask)

    clause = sub.add_parser("clause", help="显示条款原文，如：clause 四.3")
    clause.add_argument("clause_id")
    clause.set_defaults(func=cmd_clause)

    kb = sub.add_parser("kb", help="知识库工具")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    kb_sub.add_parser("check", help="校验知识库 YAML").set_defaults(func=cmd_kb_check)

    sub.add_parser("chat", help="控制台对话").set_defaults(func=cmd_chat)
    sub.add_parser("telegram", help="运行 Telegram 机器人（需 TELEGRAM_BOT_TOKEN）").set_defaults(func=cmd_telegram)

    try:
        from bot.staff_cli import add_commands
    except ImportError:
        pass
    else:
        add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings) or 0)
    except (KnowledgeError, ConfigError) as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
