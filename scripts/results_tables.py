#!/usr/bin/env python3
"""results_tables.py — the README's results tables and the issue-16 claims, from the JSON that
`clipadapt fewshot --seeds ... --json` writes (scripts/results.sh), so that they can be
regenerated instead of copied by hand. Standard library only.

  results_tables.py merge OUT.json IN.json...   join runs of one set and regime made in pieces
                                                (e.g. one method per process); refuses pieces
                                                that disagree on the set, regime or seeds
  results_tables.py tables DIR [--readme README.md] [--missing SET:METHOD=REASON ...]
                                                markdown tables (mean ± sample std per method
                                                and K, both regimes, GDA's `ks` rows beside the
                                                default), the covariance default check and the
                                                judged claims, from DIR/<set>.<select>[.ks].json;
                                                with --readme, replace the text between
                                                <!-- results:begin --> and <!-- results:end -->

The aggregate is recomputed from the per-seed records (mean, sample std), the same definition
as the library's report, so merged pieces and single runs give the same cells.
"""
import argparse, json, math, os, re, statistics, sys

SETS = ["stanford_cars", "caltech101", "oxford_pets", "oxford_flowers"]
SELECTS = ["val", "kshot-val"]
NEW = ["lp++", "zs-lp", "clap", "proker", "ape", "taskres"]
# the registry's order (`clipadapt fewshot --help`), the KS rows after their tuned rows
ORDER = ["zero-shot", "tip-adapter", "tip-adapter-f", "ape", "proker", "clip-adapter", "clip-adapter-text",
         "clip-adapter-both", "lp++", "zs-lp", "clap", "taskres", "linear-probe", "prototype", "tip-cache",
         "gda", "gda (ks)", "gda-zs", "gda-zs (ks)"]
KS_ORDER = [1, 2, 4, 8, 16]


def die(msg):
    sys.stderr.write("results_tables.py: %s\n" % msg)
    sys.exit(1)


def load(path):
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        die("%s: %s" % (path, e))
    if not isinstance(d, dict) or "runs" not in d or "seeds" not in d:
        die("%s: not a `fewshot --seeds` JSON (no runs/seeds)" % path)
    return d


def aggregate(runs):
    """(method, K) -> list of test accuracies in seed order, as the library's aggregate."""
    cells = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        cells.setdefault((r["method"], r["shots"]), []).append(r["test_acc"])
    return cells


def mean_std(xs):
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def cmd_merge(a):
    ds = [load(p) for p in a.inputs]
    head = {k: ds[0][k] for k in ("features", "select", "std", "seeds")}
    runs, seen = [], set()
    for p, d in zip(a.inputs, ds):
        for k in ("features", "select", "seeds"):
            if d[k] != head[k]:
                die("%s: %s is %r, %s has %r" % (p, k, d[k], a.inputs[0], head[k]))
        for r in d["runs"]:
            key = (r["method"], r["shots"], r["seed"])
            if key in seen:
                die("%s: %s K=%d seed %d is in two pieces" % (p, *key))
            seen.add(key)
            runs.append(r)
    rank = {m: i for i, m in enumerate(ORDER)}
    runs.sort(key=lambda r: (r["seed"], rank.get(r["method"], 99), r["method"], r["shots"]))
    agg = []
    for (m, k), xs in sorted(aggregate(runs).items(), key=lambda it: (rank.get(it[0][0], 99), it[0][0], it[0][1])):
        mu, sd = mean_std(xs)
        vals = [r["val_acc"] for r in runs if r["method"] == m and r["shots"] == k and r["val_acc"] is not None]
        vm, vs = mean_std(vals) if vals else (None, None)
        agg.append({"method": m, "shots": k, "n_seeds": len(xs), "test_mean": mu, "test_std": sd,
                    "val_mean": vm, "val_std": vs, "test_accs": xs})
    out = dict(head, runs=runs, aggregate=agg)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(tmp, a.out)


def cells_of(dirname, s, sel):
    """(row name, K) -> accuracies over seeds, for one set and regime; None when no JSON."""
    p = os.path.join(dirname, "%s.%s.json" % (s, sel))
    if not os.path.exists(p):
        return None, None
    d = load(p)
    cells = aggregate(d["runs"])
    pk = os.path.join(dirname, "%s.%s.ks.json" % (s, sel))
    if os.path.exists(pk):
        dk = load(pk)
        if dk["seeds"] != d["seeds"]:
            die("%s: seeds %r, %s has %r" % (pk, dk["seeds"], p, d["seeds"]))
        for (m, k), xs in aggregate(dk["runs"]).items():
            cells[("%s (ks)" % m, k)] = xs
    return cells, d["seeds"]


def fmt(xs):
    mu, sd = mean_std(xs)
    return "%.2f ± %.2f" % (mu, sd)


def table(cells, missing, s):
    rows = [m for m in ORDER if any((m, k) in cells for k in KS_ORDER)]
    rows += sorted({m for m, _ in cells} - set(rows))
    rows += [m for m in missing.get(s, {}) if m not in rows]
    out = ["| method | " + " | ".join("K=%d" % k for k in KS_ORDER) + " |",
           "|---|" + "---:|" * len(KS_ORDER)]
    notes = []
    for m in rows:
        line = []
        for k in KS_ORDER:
            if (m, k) in cells:
                line.append(fmt(cells[(m, k)]))
            else:
                line.append("—")
        if all(c == "—" for c in line) and m in missing.get(s, {}):
            notes.append("`%s`: %s" % (m, missing[s][m]))
            m += " ¹"
        out.append("| %s | %s |" % (m, " | ".join(line)))
    if notes:
        out.append("")
        out += ["- ¹ not measured — " + n for n in notes]
    return out


def best(cells, k):
    c = [(statistics.fmean(xs), m) for (m, kk), xs in cells.items() if kk == k]
    return max(c) if c else None


def cmd_tables(a):
    missing = {}
    for spec in a.missing:
        m = re.match(r"([^:]+):([^=]+)=(.+)", spec)
        if not m:
            die("--missing wants SET:METHOD=REASON, got %r" % spec)
        missing.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
    md, claims, cov = [], [], []
    allc = {}
    for s in SETS:
        for sel in SELECTS:
            cells, seeds = cells_of(a.dir, s, sel)
            if cells is None:
                continue
            allc[(s, sel)] = cells
            if not md or not md[-1].startswith("### " + s):
                pass
            md.append("### %s, `--select %s` (seeds %s)" % (s, sel, ",".join(map(str, seeds))))
            md.append("")
            md += table(cells, missing, s)
            md.append("")
    # the covariance default: tuned vs ks averaged over every shipped set and K present in both
    for sel in SELECTS:
        for m in ("gda", "gda-zs", None):   # None: every gda and gda-zs cell together
            pairs = [(s, k, statistics.fmean(c[(mm, k)]), statistics.fmean(c[(mm + " (ks)", k)]))
                     for (s, ss), c in allc.items() if ss == sel
                     for mm in ((m,) if m else ("gda", "gda-zs"))
                     for k in KS_ORDER if (mm, k) in c and (mm + " (ks)", k) in c]
            if pairs:
                if m is None:
                    m = "gda` and `gda-zs"

                t = statistics.fmean(p[2] for p in pairs)
                ks = statistics.fmean(p[3] for p in pairs)
                sets = sorted({p[0] for p in pairs}, key=SETS.index)
                cov.append("- `%s`, `--select %s`, mean over %d cells (%s, K = 1…16): tuned **%.2f**, ks **%.2f** "
                           "→ %s is better by %.2f points"
                           % (m, sel, len(pairs), ", ".join(sets), t, ks, "tuned" if t >= ks else "ks", abs(t - ks)))
    # the same per set: mean over K and seeds of each estimator, both regimes
    rows = []
    for s in SETS:
        for m in ("gda", "gda-zs"):
            line = []
            for sel in SELECTS:
                c = allc.get((s, sel))
                if not c or not all((m, k) in c and (m + " (ks)", k) in c for k in KS_ORDER):
                    break
                t = statistics.fmean(x for k in KS_ORDER for x in c[(m, k)])
                q = statistics.fmean(x for k in KS_ORDER for x in c[(m + " (ks)", k)])
                line += ["%.2f" % t, "%.2f" % q, "%+.2f" % (q - t)]
            if len(line) == 6:
                rows.append("| %s | `%s` | %s |" % (s, m, " | ".join(line)))
    if rows:
        cov += ["", "| set | method | tuned (val) | ks (val) | ks − tuned | tuned (kshot-val) | ks (kshot-val) | ks − tuned |",
                "|---|---|---:|---:|---:|---:|---:|---:|"] + rows
        cov += ["", "(mean test accuracy over K = 1, 2, 4, 8, 16 and the seeds)"]
    # the judged claims
    cars = allc.get(("stanford_cars", "val"))
    if cars:
        zs = cars.get(("zero-shot", 16))
        for m in NEW:
            if zs and (m, 16) in cars:
                mu, sd = mean_std(cars[(m, 16)])
                gap = mu - statistics.fmean(zs)
                n = len(cars[(m, 16)])
                claims.append("- stanford_cars, K=16, `--select val`, %d seeds: `%s` %.2f ± %.2f vs zero-shot %.2f: "
                              "%+.2f points — %s" % (n, m, mu, sd, statistics.fmean(zs), gap,
                                                     "met (≥ 5)" if gap >= 5 else "**not met** (< 5)"))
            else:
                claims.append("- stanford_cars, K=16: `%s` **not measured**" % m)
        for k in (1, 2, 4):
            if ("lp++", k) in cars and ("linear-probe", k) in cars:
                a_, b_ = statistics.fmean(cars[("lp++", k)]), statistics.fmean(cars[("linear-probe", k)])
                claims.append("- stanford_cars, K=%d, `--select val`: `lp++` %s vs `linear-probe` %s: %+.2f — %s"
                              % (k, fmt(cars[("lp++", k)]), fmt(cars[("linear-probe", k)]), a_ - b_,
                                 "met" if a_ > b_ else "**not met**"))
    for s in SETS:
        v, kv = allc.get((s, "val")), allc.get((s, "kshot-val"))
        if not v or not kv:
            continue
        for k in KS_ORDER:
            bv, bk = best(v, k), best(kv, k)
            if not bv or not bk:
                continue
            d = abs(bv[0] - bk[0])
            claims.append("- %s, K=%d: best under val `%s` %.2f, under kshot-val `%s` %.2f: %.2f points apart — %s"
                          % (s, k, bv[1], bv[0], bk[1], bk[0], d, "within 1" if d <= 1 else "**not within 1**"))
    text = "\n".join(md + ["#### GDA covariance: tuned (default) vs ks (published)", ""] + (cov or ["- no `ks` JSON"]) +
                     ["", "#### Judged claims (computed from the same JSON)", ""] + claims) + "\n"
    if a.readme:
        r = open(a.readme).read()
        b, e = "<!-- results:begin -->", "<!-- results:end -->"
        if b not in r or e not in r:
            die("%s: no %s ... %s markers" % (a.readme, b, e))
        r = r[:r.index(b) + len(b)] + "\n" + text + r[r.index(e):]
        with open(a.readme + ".tmp", "w") as f:
            f.write(r)
        os.replace(a.readme + ".tmp", a.readme)
    else:
        sys.stdout.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("merge")
    m.add_argument("out")
    m.add_argument("inputs", nargs="+")
    t = sub.add_parser("tables")
    t.add_argument("dir")
    t.add_argument("--readme")
    t.add_argument("--missing", action="append", default=[])
    a = ap.parse_args()
    {"merge": cmd_merge, "tables": cmd_tables}[a.cmd](a)


if __name__ == "__main__":
    main()
