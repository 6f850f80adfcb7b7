#!/usr/bin/env python3
"""Writes data/queries.jsonl: labelled classifier examples (see data/README.md).

Deterministic: a fixed seed, sorted iteration, no wall clock. Run from anywhere:
    python3 crates/triage-classifier/data/generate.py

Every phrasing is a template with an id. The split holds out WHOLE templates: within each
(intent, language) the templates are ranked by a hash of their id and the first ones go to
test and dev, so no test query shares a phrasing with a training query; only slot values
(products, cities, amounts) recur. That keeps the test accuracy honest about new phrasings.
"""
import hashlib
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slots as sl  # noqa: E402
from clauses import CLAUSES, CONTRACT_ASKS  # noqa: E402
from intents_history import DIALOGS, FOLLOW_UPS, ORPHANS  # noqa: E402
from intents_standalone import EXTRA, EXTRA_2, INTENTS, MIXED, MIXED_EXTRA  # noqa: E402

SEED = 20250611
LANGS = ["en", "es", "pt"]
# Samples per template, by complexity: simple queries dominate real traffic (the seed: 76 %).
PER_TEMPLATE = {"simple": 10, "moderate": 9, "complex": 8}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "queries.jsonl")


def h(s):
    return int(hashlib.sha256(s.encode()).hexdigest()[:12], 16)


def money(rng, lang, lo, hi):
    v = rng.randrange(lo, hi, 5)
    style = rng.random()
    if lang == "pt" and style < 0.5:
        return f"R$ {v:,}".replace(",", ".")
    if lang == "es" and style < 0.4:
        return f"{v:,} €".replace(",", ".")
    return f"${v:,}" if style < 0.85 else f"{v} dollars"


def fill(rng, text, lang):
    """Fills {slots}; a mixed template draws each slot from a random language."""
    def pick(table):
        lg = lang if lang in LANGS else rng.choice(LANGS)
        return rng.choice(table[lg])

    a, b = rng.sample(sl.PLANS, 1)[0]
    lg = lang if lang in LANGS else rng.choice(LANGS)
    p1, p2 = rng.sample(sl.PRODUCTS[lg], 2)
    d1, d2 = rng.sample(sl.DRUGS, 2)
    values = {
        "order": rng.choice(["#", "", "AB-", "n.º "]) + str(rng.randrange(10000, 99999)),
        "product": p1, "product2": p2, "thing": pick(sl.THINGS), "color": pick(sl.COLORS),
        "size": rng.choice(sl.SIZES), "day": pick(sl.DAYS), "city": rng.choice(sl.CITIES),
        "plan_a": a, "plan_b": b, "payment": pick(sl.PAYMENTS),
        "amount_small": money(rng, lg, 15, 300), "amount_big": money(rng, lg, 550, 9000),
        "drug": d1, "drug2": d2, "competitor": rng.choice(sl.COMPETITORS), "brand": rng.choice(sl.BRANDS),
        "audience": pick(sl.AUDIENCES), "issue": pick(sl.ISSUES), "n": str(rng.randrange(2, 40)),
        "n_big": str(rng.choice([10, 12, 15, 20, 25, 30, 50])), "qty": str(rng.choice([200, 500, 800, 1200, 5000])),
        "pct": str(rng.choice([7, 10, 12, 15, 18, 22])), "code": rng.choice(sl.CODE_SNIPPETS),
        "code_task": pick(sl.CODE_TASKS),
    }
    if "{doc}" in text:
        clauses = rng.sample(CLAUSES[lg], rng.randrange(3, min(8, len(CLAUSES[lg]))))
        values["doc"] = "\n".join(f"{i + 1}. {c}" for i, c in enumerate(clauses))
    out = text
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    return out


GREET = {"en": ["hi, ", "hey ", "hello, "], "es": ["hola, ", "buenas, "], "pt": ["oi, ", "olá, "]}
PLEASE = {"en": [" please", " pls", ", thanks"], "es": [" por favor", ", gracias"], "pt": [" por favor", ", obrigado"]}


def noise(rng, text, lang, short):
    """Label-preserving surface variation: case, punctuation, greetings, politeness."""
    if lang in LANGS and short:
        r = rng.random()
        if r < 0.08:
            text = rng.choice(GREET[lang]) + text
        elif r < 0.16:
            text = text.rstrip("?!. ") + rng.choice(PLEASE[lang])
    r = rng.random()
    if r < 0.25:
        text = text.lower()
    elif r < 0.4:
        text = text.rstrip("?!.")
    return text


def templates():
    """(template_id, intent, complexity, category, ctx, lang, text, dialog) for every phrasing."""
    out = []
    for name, cx, cat, ctx, by_lang in INTENTS:
        for lang in LANGS:
            phrasings = by_lang.get(lang, []) + EXTRA.get(name, {}).get(lang, []) + EXTRA_2.get(name, {}).get(lang, [])
            for i, t in enumerate(phrasings):
                out.append((f"{name}:{lang}:{i}", name, cx, cat, ctx, lang, t, None))
    for lang in LANGS:
        for i, t in enumerate(CONTRACT_ASKS[lang]):
            out.append((f"contract_doc:{lang}:{i}", "contract_doc", "complex", "analytical", False, lang, t, None))
    extra = dict(MIXED_EXTRA)
    for name, cx, cat, ctx, texts in MIXED:
        for i, t in enumerate(texts + extra.get(name, [])):
            out.append((f"{name}:mixed:{i}", name, cx, cat, ctx, "mixed", t, None))
    for name, cx, cat, ctx, dialog, by_lang in FOLLOW_UPS:
        for lang in LANGS:
            for i, t in enumerate(by_lang.get(lang, [])):
                out.append((f"{name}:{lang}:{i}", name, cx, cat, ctx, lang, t, dialog))
    for name, cx, cat, ctx, by_lang in ORPHANS:
        for lang in LANGS:
            for i, t in enumerate(by_lang[lang]):
                out.append((f"{name}:{lang}:{i}", name, cx, cat, ctx, lang, t, None))
    return out


def assign_splits(tpls):
    """Within each (intent, language): rank templates by hash; 1st -> test, 2nd -> dev
    (when there are at least 3 and 4 of them), the rest train."""
    groups = {}
    for t in tpls:
        groups.setdefault((t[1], t[5]), []).append(t[0])
    split = {}
    for key in sorted(groups):
        ids = sorted(groups[key], key=lambda i: h("split:" + i))
        for rank, tid in enumerate(ids):
            if rank == 0 and len(ids) >= 3:
                split[tid] = "test"
            elif rank == 1 and len(ids) >= 4:
                split[tid] = "dev"
            else:
                split[tid] = "train"
    return split


def main():
    rng = random.Random(SEED)
    tpls = templates()
    split = assign_splits(tpls)
    rows, seen = [], set()
    dialog_names = sorted(DIALOGS)
    for tid, intent, cx, cat, ctx, lang, text, dialog in tpls:
        want = PER_TEMPLATE[cx] if "{" in text else 3
        got = 0
        for _ in range(want * 6):
            if got >= want:
                break
            q = noise(rng, fill(rng, text, lang), lang, len(text) < 80)
            history = []
            hl = lang if lang in LANGS else rng.choice(LANGS)
            if dialog is not None:
                history = [{"role": r, "content": fill(rng, c, hl)} for r, c in DIALOGS[dialog][hl]]
            elif intent != "orphan_fu" and rng.random() < 0.2:
                # A standalone query after an unrelated conversation: history present, not
                # needed. Teaches the heads that "has history" is not "requires context".
                d = rng.choice(dialog_names)
                history = [{"role": r, "content": fill(rng, c, hl)} for r, c in DIALOGS[d][hl]]
            key = (q, json.dumps(history, ensure_ascii=False))
            if key in seen:
                continue
            seen.add(key)
            got += 1
            rows.append({
                "id": f"{tid}:{got}", "query": q, "history": history, "complexity": cx, "category": cat,
                "requires_context": ctx, "language": lang, "split": split[tid], "template": tid,
                "intent": intent, "source": "synthetic-v1",
            })
    with open(OUT, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} examples from {len(tpls)} templates to {OUT}")


if __name__ == "__main__":
    main()
