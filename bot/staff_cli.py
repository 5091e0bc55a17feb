"""Staff commands on the command line: `report` and `unanswered`.

    python -m bot report [--days N] [--chart FILE.png] [--db FILE]
    python -m bot unanswered [--days N] [--export FILE.yaml] [--db FILE]

The same figures and groups as /stats and /unanswered in Telegram, read from the
bot's database (DATABASE_PATH, or --db).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings
from knowledge.errors import KnowledgeError

if TYPE_CHECKING:
    from knowledge.loader import KnowledgeBase
    from knowledge.storage.store import Store

STATS_DAYS = 7
UNANSWERED_DAYS = 30


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为天数（整数），现为 {value!r}") from None
    if not 1 <= days <= 3660:
        raise argparse.ArgumentTypeError("天数应在 1-3660 之间")
    return days


def _open_store(args: argparse.Namespace, settings: Settings) -> Store | None:
    from knowledge.storage.store import Store

    path = Path(args.db) if args.db else settings.database_path
    if not path.is_file():
        print(f"错误：数据库 {path} 不存在（机器人运行后才会创建；用 --db 或 DATABASE_PATH 指定）", file=sys.stderr)
        return None
    return Store(path, settings.user_hash_salt)


def _knowledge(args: argparse.Namespace, settings: Settings) -> KnowledgeBase | None:
    """The knowledge base, for entry names; the figures do not depend on it."""
    from bot.cli import knowledge_dir
    from knowledge.loader import load_knowledge

    try:
        return load_knowledge(knowledge_dir(args, settings))
    except KnowledgeError as exc:
        print(f"注意：知识库无法加载，以下只显示条目编号（{exc}）", file=sys.stderr)
        return None


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.staff import stats

    store = _open_store(args, settings)
    if store is None:
        return 2
    try:
        figures = stats.compute(store, args.days)
    finally:
        store.close()
    print(stats.format_report(figures, _knowledge(args, settings)))
    if args.chart:
        from knowledge.staff.chart import write_daily_chart

        try:
            path = write_daily_chart(figures, args.chart)
        except OSError as exc:
            print(f"错误：无法写入图表 {args.chart}：{exc}", file=sys.stderr)
            return 1
        print(f"图表已写入 {path}")
    return 0


def cmd_unanswered(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.staff import unanswered

    store = _open_store(args, settings)
    if store is None:
        return 2
    try:
        asked = unanswered.collect(store, args.days)
    finally:
        store.close()
    # The engine's segmenter groups paraphrases ("个体户能申报吗" / "个人可以申报吗") and
    # its matcher guesses each stub's topic; without a loadable knowledge base, characters only.
    tokenize = guess = kb = None
    try:
        from bot.cli import knowledge_dir
        from knowledge.assistant import Assistant

        assistant = Assistant.load(settings.index_path, knowledge_dir(args, settings))
    except KnowledgeError as exc:
        print(f"注意：知识库无法加载，仅按字面相似度分组（{exc}）", file=sys.stderr)
    else:
        kb, tokenize = assistant.kb, assistant.index.tokens

        def guess(text: str) -> str | None:
            top = assistant.matcher.rank(text).top
            # Below the engine's own "ambiguous" bar the best entry is noise, not a topic.
            good = top is not None and top.score >= assistant.thresholds.ambiguous
            return kb.entries[top.entry_id].topic if good else None

    groups = unanswered.group(asked, tokenize)
    print(unanswered.format_groups(groups, args.days, limit=args.limit))
    if args.export:
        text = unanswered.export_stubs(groups[:args.limit], kb, days=args.days, guess=guess)
        try:
            Path(args.export).parent.mkdir(parents=True, exist_ok=True)
            Path(args.export).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"错误：无法写入 {args.export}：{exc}", file=sys.stderr)
            return 1
        print(f"已导出 {min(len(groups), args.limit)} 个条目草稿到 {args.export}：补全 answer、clauses 等后粘贴到 faq.yaml。")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add `report` and `unanswered` to bot/cli.py's subcommands."""
    report = sub.add_parser("report", help="统计：提问量、回答结果、评价、资格自测、最常问的问题；--chart 输出每日图表 PNG")
    report.add_argument("--days", type=_days, default=STATS_DAYS, help=f"最近几天（默认 {STATS_DAYS}）")
    report.add_argument("--chart", metavar="FILE.png", help="把每日提问量图表写入该 PNG 文件")
    report.add_argument("--db", metavar="FILE", help="数据库文件（默认：DATABASE_PATH 设置）")
    report.set_defaults(func=cmd_report)

    un = sub.add_parser("unanswered", help="未能回答、需澄清或得到 👎 的提问，按相似度分组；--export 导出为 FAQ 条目草稿")
    un.add_argument("--days", type=_days, default=UNANSWERED_DAYS, help=f"最近几天（默认 {UNANSWERED_DAYS}）")
    un.add_argument("--export", metavar="FILE.yaml", help="把各组写成 faq.yaml 格式的条目草稿")
    un.add_argument("--limit", type=_days, default=50, help="最多列出/导出几组（默认 50）")
    un.add_argument("--db", metavar="FILE", help="数据库文件（默认：DATABASE_PATH 设置）")
    un.set_defaults(func=cmd_unanswered)
