"""Staff commands on the command line: `report` and `unanswered`.

    python -m bot report [--days N] [--chart FILE.png] [--db FILE]
    python -m bot unanswered [--days N] [--export FILE.yaml] [--db FILE]
    python -m bot unanswered --review [--days N] [--db FILE]

The same figures and groups as /stats and /unanswered in Telegram, read from the
bot's database (DATABASE_PATH, or --db). --review is /unanswered's buttons in the
terminal: accept a suggested entry, mark a group not covered, or ignore it; the
decisions go to learned.yaml beside the knowledge base, as in Telegram.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings
from knowledge.errors import KnowledgeError

if TYPE_CHECKING:
    from knowledge.assistant import Assistant
    from knowledge.learning.suggestions import Card
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
    kb = _knowledge(args, settings)
    try:
        figures = stats.compute(store, args.days)
        learned = _learned_figures(store, kb)
    finally:
        store.close()
    print(stats.format_report(figures, kb, learned))
    if args.chart:
        from knowledge.staff.chart import write_daily_chart

        try:
            path = write_daily_chart(figures, args.chart)
        except OSError as exc:
            print(f"错误：无法写入图表 {args.chart}：{exc}", file=sys.stderr)
            return 1
        print(f"图表已写入 {path}")
    return 0


def _learned_figures(store: Store, kb: KnowledgeBase | None):  # -> stats.LearnedFigures | None
    from knowledge.learning import records
    from knowledge.staff import stats

    if kb is None:
        return None
    try:
        changes = records.read(kb.source_dir)
    except KnowledgeError:
        return None
    return stats.learned_figures(store, [(c.when, c.texts) for c in changes if c.kind != "ignored"])


def _not_handled(asked: list, args: argparse.Namespace, settings: Settings) -> list:
    """Without the questions staff already decided on (learned.yaml), as /unanswered shows them."""
    from bot.cli import knowledge_dir
    from knowledge.learning import records, suggestions
    from knowledge.loader import DATA_DIR

    try:
        return suggestions.not_handled(asked, records.read(knowledge_dir(args, settings) or DATA_DIR))
    except KnowledgeError as exc:
        print(f"注意：learned.yaml 无法读取，已处理过的提问也会列出（{exc}）", file=sys.stderr)
        return asked


def cmd_unanswered(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.staff import unanswered

    if args.review:
        return cmd_review(args, settings)
    store = _open_store(args, settings)
    if store is None:
        return 2
    try:
        asked = unanswered.collect(store, args.days)
    finally:
        store.close()
    asked = _not_handled(asked, args, settings)
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
            top = assistant.suggest(text, k=1)
            # Below the policy's suggestion floor the best entry is noise, not a topic.
            good = bool(top) and top[0][1] >= assistant.engine.policy.suggest_floor
            return kb.entries[top[0][0]].topic if good else None

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


# -- unanswered --review: the accept/reject loop in the terminal ------------------------------------

REVIEW_PROMPT = "选择：{choices}n 通知未涉及，i 忽略，回车 跳过，q 结束 > "


def _ask(read: Callable[[str], str], prompt: str) -> str | None:
    """One line from the staff member; None at end of input."""
    try:
        return read(prompt).strip()
    except EOFError:
        return None


def _yes(read: Callable[[str], str], prompt: str) -> bool:
    return (_ask(read, prompt) or "").lower() in ("y", "yes", "是", "好")


def _save(assistant: Assistant, change, read: Callable[[str], str]) -> bool:  # noqa: ANN001 (records.Change)
    from knowledge.learning import teach

    result = teach.propose(assistant, change)
    if not result.saved:
        print(teach.conflict_text(result))
        if not _yes(read, "仍然保存？(y/N) > "):
            print("没有保存。")
            return False
        result = teach.propose(assistant, change, check=False)
    print(teach.saved_text(result, assistant.kb).replace("可在 /learned 中撤销", "可在 Telegram 的 /learned 中撤销"))
    return True


def _review_card(assistant: Assistant, card: Card, by: str, read: Callable[[str], str]) -> bool | None:
    """One group: True when something was saved, False when not, None to stop."""
    from knowledge.learning import teach

    numbers = "".join(f"{n} " for n in range(1, len(card.suggestions) + 1))
    choices = f"{numbers.strip().replace(' ', '/')} 归入对应条目，" if card.suggestions else ""
    while True:
        choice = _ask(read, REVIEW_PROMPT.format(choices=choices))
        if choice is None or choice.lower() == "q":
            return None
        if choice == "":
            return False
        if choice.isdigit() and 1 <= int(choice) <= len(card.suggestions):
            entry_id = card.suggestions[int(choice) - 1].entry_id
            return _save(assistant, teach.phrasings_change(assistant, card, entry_id, by), read)
        if choice.lower() == "i":
            return _save(assistant, teach.ignore_change(assistant, card, by), read)
        if choice.lower() == "n":
            line = _ask(read, "请用一句话说明通知没有写的内容（回车放弃）> ")
            if not line:
                print("没有保存。")
                return False
            try:
                change = teach.not_covered_change(assistant, card, line, by)
            except ValueError as exc:
                print(exc)
                continue
            contact = assistant.kb.meta.contact
            print(f"预览：用户问“{card.example}”时将看到：\n{line}\n（后面自动附上联系人 {contact.person}、电话 {contact.phone}）")
            if not _yes(read, "保存？(y/N) > "):
                print("没有保存。")
                return False
            return _save(assistant, change, read)
        print("没有这个选项。")


def cmd_review(args: argparse.Namespace, settings: Settings, read: Callable[[str], str] = input) -> int:
    from bot.cli import knowledge_dir
    from knowledge.assistant import Assistant
    from knowledge.learning import records, suggestions
    from knowledge.staff import unanswered

    store = _open_store(args, settings)
    if store is None:
        return 2
    try:
        # An index of its own in memory: the bot's index file may be in use by the running bot.
        assistant = Assistant.load(":memory:", knowledge_dir(args, settings))
        asked = suggestions.not_handled(unanswered.collect(store, args.days), records.read(assistant.kb.source_dir))
        by = store.user_hash(f"shell:{getpass.getuser()}")
    finally:
        store.close()
    groups = unanswered.group(asked, assistant.index.tokens)  # the same grouping as /unanswered
    if not groups:
        print(unanswered.format_groups(groups, args.days))
        return 0
    cards = suggestions.cards(assistant, groups, args.limit)
    print(f"最近 {args.days} 天有 {len(groups)} 组提问未能很好回答，逐组处理（共 {len(cards)} 组）：")
    saved = 0
    for number, card in enumerate(cards, 1):
        print()
        print(suggestions.describe_card(card, number, assistant.kb))
        outcome = _review_card(assistant, card, by, read)
        if outcome is None:
            break
        saved += outcome
    print(f"\n本次保存 {saved} 项，记录在 {records.path_in(assistant.kb.source_dir)}。"
          + ("正在运行的机器人：发 /reload 后生效。" if saved else ""))
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
    un.add_argument("--review", action="store_true",
                    help="逐组处理：归入建议的条目、标为“通知未涉及”或忽略（写入知识库目录的 learned.yaml）")
    un.add_argument("--limit", type=_days, default=50, help="最多列出/导出/处理几组（默认 50）")
    un.add_argument("--db", metavar="FILE", help="数据库文件（默认：DATABASE_PATH 设置）")
    un.set_defaults(func=cmd_unanswered)
