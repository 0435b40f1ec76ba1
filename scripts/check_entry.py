#!/usr/bin/env python3
"""check_entry.py — the public entry points keep issue 12's contract, checked on the source.

  1. every CA_API function of include/clipadapt.h that can fail (returns ca_status, or calls
     ca_fail) clears the last error on entry: CA_ENTER() within its first three statements;
  2. no public function takes a writable `ca_model *` except ca_model_free (a loaded model is
     immutable: encoding and classifying take `const ca_model *`);
  3. nothing in src/ or cli/ calls omp_set_num_threads, and openblas_set_num_threads is called
     only by the save/restore pair in src/adapt/train.c (thread counts are passed down, never set
     process-wide; tests/test_session.c checks the counts before/after every call family).
Usage: check_entry.py [ROOT]. Prints each violation, then "N passed, N failed".
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
passed = failed = 0


def report(ok, msg):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL " + msg)


def strip_comments(s):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", s, flags=re.S)


hdr = strip_comments(open(os.path.join(root, "include/clipadapt.h")).read())
decls = {}
for m in re.finditer(r"CA_API\s+([^;{]*?)\b(ca_\w+)\s*\(([^)]*)\)\s*;", hdr, re.S):
    decls[m.group(2)] = (" ".join(m.group(1).split()), m.group(3))

files = []
for top in ("src", "cli"):
    for d, _, names in os.walk(os.path.join(root, top)):
        files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h"))]

defs = {}
for f in files:
    if not f.startswith(os.path.join(root, "src")):
        continue
    s = strip_comments(open(f).read())
    for m in re.finditer(r"^[A-Za-z_][\w \*]*?\b(ca_\w+)\(([^;{}]*?)\)\s*\{", s, re.M | re.S):
        if m.group(1) not in decls:
            continue
        # the body: up to the matching brace
        i, depth = m.end(), 1
        while depth and i < len(s):
            depth += {"{": 1, "}": -1}.get(s[i], 0)
            i += 1
        defs[m.group(1)] = (os.path.relpath(f, root), s[m.end():i - 1])

# 1. CA_ENTER on entry
for name, (ret, _) in sorted(decls.items()):
    if name not in defs:
        continue  # defined outside src/ (none today) or a macro
    path, body = defs[name]
    can_fail = ret == "ca_status" or "ca_fail(" in body
    if not can_fail:
        continue
    first = [t.strip() for t in body.split(";")[:3]]
    report(any(t.startswith("CA_ENTER()") for t in first),
           "%s: %s can fail but does not start with CA_ENTER() (the last error would be stale)" % (path, name))

# 2. const models
for name, (ret, args) in sorted(decls.items()):
    writable = re.search(r"(?<!const )\bca_model\s*\*", args)
    report(not writable or name == "ca_model_free",
           "include/clipadapt.h: %s takes a writable ca_model * (models are immutable after load)" % name)

# 3. process-wide thread counts
for f in sorted(files):
    s = strip_comments(open(f).read())
    rel = os.path.relpath(f, root)
    for m in re.finditer(r"\b(omp_set_num_threads|openblas_set_num_threads|omp_set_dynamic|omp_set_max_active_levels)\s*\(", s):
        line = s.count("\n", 0, m.start()) + 1
        allowed = rel == os.path.join("src", "adapt", "train.c") and m.group(1) == "openblas_set_num_threads"
        report(allowed, "%s:%d: %s changes a process-wide setting" % (rel, line, m.group(1)))
if failed == 0:
    passed += 1  # the scan itself

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
