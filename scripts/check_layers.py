#!/usr/bin/env python3
"""check_layers.py — the library's layers point one way and its files form no cycle.

Layers, lowest first: core <- io <- text <- model <- data <- adapt <- eval (<- cli). A module is
one file stem (src/io/image.c and src/io/image.h are both module io/image). A module depends on
another when it includes that module's header or, in the built objects, uses a symbol that the
other module's object defines (nm). Checks:
  1. no include of a header from a higher layer (or of anything under cli/);
  2. no call from a lower layer to a higher one, and no library object using a cli/ symbol;
  3. no cycle among modules (includes and calls together).
Usage: check_layers.py [BUILD]   (BUILD/obj holds the objects; without them only 1 and the
include part of 3 run). Prints each violation, then "N passed, N failed".
"""
import os
import re
import subprocess
import sys

LAYERS = ["core", "io", "text", "model", "data", "adapt", "eval", "cli"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    """'src/io/image_png.c' -> 'io/image_png'; 'cli/main.c' -> 'cli/main'; None outside."""
    p = os.path.normpath(path)
    if p.startswith("src" + os.sep):
        p = p[4:]
    elif not p.startswith("cli" + os.sep):
        return None
    return os.path.splitext(p)[0]


def layer_of(mod):
    return LAYERS.index(mod.split("/")[0])


def sources(root):
    out = []
    for top in ("src", "cli"):
        for d, _, files in os.walk(os.path.join(root, top)):
            out += [os.path.relpath(os.path.join(d, f), root) for f in files if f.endswith((".c", ".h"))]
    return sorted(out)


def resolve(root, src, inc):
    """Path of an included file relative to root, as the compiler's -Iinclude -Isrc finds it."""
    for base in (os.path.dirname(src), "include", "src"):
        cand = os.path.normpath(os.path.join(base, inc))
        if os.path.exists(os.path.join(root, cand)):
            return cand
    return None


def nm(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TDBRVWGS":
            defined.add(f[2])
        elif len(f) == 2 and f[0] == "U":
            undefined.add(f[1])
    return defined, undefined


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, onstack, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]; counter[0] += 1
        stack.append(start); onstack.add(start)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]; counter[0] += 1
                    stack.append(nxt); onstack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in onstack:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); onstack.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    if not os.path.isabs(build):
        build = os.path.join(root, build)
    errors, checks = [], 0
    graph = {}  # module -> {module: reason}

    # 1. includes
    for src in sources(root):
        mod = module_of(src)
        text = open(os.path.join(root, src), encoding="utf-8", errors="replace").read()
        for inc in INCLUDE.findall(text):
            checks += 1
            tgt = resolve(root, src, inc)
            if tgt is None:
                errors.append(f"{src}: includes \"{inc}\", which is not in the tree")
                continue
            tmod = module_of(tgt)
            if tmod is None or tmod == mod:  # include/clipadapt.h is public: every layer may use it
                continue
            if layer_of(tmod) > layer_of(mod):
                errors.append(f"{src}: includes {tgt} from the higher layer {tmod.split('/')[0]}/")
            graph.setdefault(mod, {}).setdefault(tmod, f"includes {tgt}")

    # 2. symbols of the built objects (only those whose source still exists)
    objs = {}
    for src in sources(root):
        if src.endswith(".c"):
            # portable x86-64 builds compile the kernel files per CPU path (Makefile ISA_SRC):
            # their generic objects, before the symbols are renamed, are the ones to read
            for o in (os.path.join(build, "isa-raw", "generic", os.path.splitext(src)[0] + ".o"),
                      os.path.join(build, "obj", os.path.splitext(src)[0] + ".o")):
                if os.path.exists(o):
                    objs[module_of(src)] = nm(o)
                    break
    definer = {}
    for mod, (defined, _) in objs.items():
        for s in defined:
            definer[s] = mod
    for mod, (_, undefined) in sorted(objs.items()):
        for s in sorted(undefined):
            tmod = definer.get(s)
            if tmod is None or tmod == mod:
                continue
            checks += 1
            if layer_of(tmod) > layer_of(mod):
                errors.append(f"{mod}: calls {s} from the higher layer module {tmod}")
            graph.setdefault(mod, {}).setdefault(tmod, f"uses {s}")
    if not objs:
        print(f"note: no objects under {build}/obj: call checks skipped")

    # 3. cycles
    checks += 1
    for comp in cycles({m: set(t) for m, t in graph.items()}):
        members = set(comp)
        links = [f"{m} -> {t} ({why})" for m in comp for t, why in sorted(graph[m].items()) if t in members]
        errors.append("cycle among " + ", ".join(comp) + ": " + "; ".join(links))

    for e in errors:
        print("FAIL " + e)
    print(f"{checks - len(errors)} passed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
