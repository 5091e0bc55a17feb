#!/usr/bin/env python3
"""Answer-time, cold-start and memory figures for the answering engine.

    python scripts/bench_engine.py            # real knowledge base and a synthetic 5,000-entry one

Each base is measured in a fresh subprocess: cold start (interpreter start to a
loaded Assistant, index and vectors already built), then every question of a
mixed list (phrasings, edited phrasings, off-topic questions) answered afresh
N times, then once more from the reply cache; it prints median and p99 per
question and the peak resident memory, with the semantic model in the loop.
Targets: p99 < 30 ms; a repeated question < 1 ms; cold start < 3 s; peak < 400 MB.
The first run embeds the synthetic base (about 40,000 texts: several minutes);
vectors are cached, so later runs start at once. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.loader import DATA_DIR, load_knowledge  # noqa: E402

CHILD = r"""
import json, resource, statistics, sys, time
t0 = time.perf_counter()
from knowledge.assistant import Assistant
assistant = Assistant.load(sys.argv[1], sys.argv[2])
cold = time.perf_counter() - t0
questions = json.loads(open(sys.argv[3], encoding="utf-8").read())
rounds = int(sys.argv[4])
for q in questions[:50]:
    assistant.answer(q)  # warm jieba, numpy and the SQLite page cache the way a running bot has them
times, cached = [], []
for _ in range(rounds):
    assistant._cache.clear()  # every question computed afresh, as a new question is
    if assistant.engine.semantic is not None:
        assistant.engine.semantic.forget_questions()  # ... and embedded afresh
    for q in questions:
        start = time.perf_counter()
        assistant.answer(q)
        times.append((time.perf_counter() - start) * 1000)
for q in questions:  # the same question again: served from the reply cache
    start = time.perf_counter()
    assistant.answer(q)
    cached.append((time.perf_counter() - start) * 1000)
times.sort()
cached.sort()
print(json.dumps({
    "cold_start_s": cold,
    "median_ms": statistics.median(times),
    "p99_ms": times[int(len(times) * 0.99) - 1],
    "cached_p99_ms": cached[int(len(cached) * 0.99) - 1],
    "answers": len(times),
    "semantic": assistant.semantic,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

OFF_TOPIC = ["武汉今天天气怎么样", "帮我写首诗", "入选后有多少补贴", "第三批什么时候申报", "评审怎么打分",
             "你们几点下班", "国家级试点怎么报", "股票会涨吗"]


def synthetic_data_dir(target: Path, size: int, seed: int = 7) -> Path:
    """A knowledge base of `size` entries built from the real one's vocabulary."""
    kb = load_knowledge()
    rng = random.Random(seed)
    shutil.copytree(DATA_DIR, target)
    pool = [p for e in kb.entries.values() for p in (e.question, *e.phrasings)]
    words = sorted({w for p in pool for w in _chunks(p)})
    clause_ids = [cid for cid, c in kb.clauses.items() if c.text]  # kb check: a cited clause has text
    entries = []
    for n in range(size):
        base = rng.choice(pool)
        extra = "".join(rng.sample(words, 3))
        phrasings = list(dict.fromkeys(f"{extra}{rng.choice(pool)}{rng.choice(words)}{k}" for k in range(7)))
        entries.append({
            "id": f"synthetic_{n:05d}", "topic": kb.topics[0].id, "question": f"{extra}{base}",
            # No figure (kb check: figures must be the notice's) and a conclusion (a question may end in 吗).
            "phrasings": phrasings, "conclusion": "合成答案", "answer": "合成答案。", "clauses": [rng.choice(clause_ids)],
        })
    doc = {"topics": [{"id": t.id, "name": t.name} for t in kb.topics], "entries": entries}
    (target / "faq.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def _chunks(text: str) -> list[str]:
    return [text[i:i + 2] for i in range(0, max(len(text) - 1, 1), 2)]


def questions_for(data_dir: Path, count: int, seed: int = 11) -> list[str]:
    kb = load_knowledge(data_dir)
    rng = random.Random(seed)
    pool = [p for e in kb.entries.values() for p in e.phrasings]
    out = []
    for _ in range(count):
        q = rng.choice(pool)
        if rng.random() < 0.3 and len(q) > 4:  # an edited phrasing: a character dropped
            i = rng.randrange(len(q))
            q = q[:i] + q[i + 1:]
        out.append(q)
    out += OFF_TOPIC
    return out


def measure(name: str, data_dir: Path, workdir: Path, rounds: int) -> dict:
    index_path = workdir / f"{name}.index.db"
    questions = questions_for(data_dir, 300)
    qfile = workdir / f"{name}.questions.json"
    qfile.write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    from knowledge.assistant import Assistant

    start = time.perf_counter()
    Assistant.load(index_path, data_dir)  # builds the index: not part of the cold start
    build = time.perf_counter() - start
    proc = subprocess.run([sys.executable, "-c", CHILD, str(index_path), str(data_dir), str(qfile), str(rounds)],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["index_build_s"] = build
    result["entries"] = len(load_knowledge(data_dir).entries)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=5000, help="entries in the synthetic base (0: the real base only)")
    parser.add_argument("--rounds", type=int, default=3, help="times each question is answered afresh")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bases = [("real", DATA_DIR)]
        if args.size:
            bases.append(("synthetic", synthetic_data_dir(work / "synthetic", args.size)))
        print(f"{'base':<10} {'entries':>7} {'median ms':>10} {'p99 ms':>8} {'cached p99':>10} {'cold s':>7} "
              f"{'build s':>8} {'peak MB':>8} semantic")
        for name, data_dir in bases:
            r = measure(name, data_dir, work, args.rounds)
            print(f"{name:<10} {r['entries']:>7} {r['median_ms']:>10.3f} {r['p99_ms']:>8.3f} {r['cached_p99_ms']:>10.4f} "
                  f"{r['cold_start_s']:>7.2f} {r['index_build_s']:>8.2f} {r['peak_rss_mb']:>8.1f} {r['semantic']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
