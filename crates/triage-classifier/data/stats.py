#!/usr/bin/env python3
"""Prints the composition of queries.jsonl: counts per label, language and split."""
import collections
import json
import os

rows = [json.loads(l) for l in open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "queries.jsonl"), encoding="utf-8")]
print(f"{len(rows)} examples, {len({r['template'] for r in rows})} templates, "
      f"{sum(1 for r in rows if r['history'])} with history")
for key in ["complexity", "category", "requires_context", "language"]:
    table = collections.Counter((r[key], r["split"]) for r in rows)
    values = sorted({r[key] for r in rows}, key=str)
    print(f"\n{key:<18} {'train':>6} {'dev':>6} {'test':>6} {'total':>6}")
    for v in values:
        t = [table[(v, s)] for s in ["train", "dev", "test"]]
        print(f"  {str(v):<16} {t[0]:>6} {t[1]:>6} {t[2]:>6} {sum(t):>6}")
