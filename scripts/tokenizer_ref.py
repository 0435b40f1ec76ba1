#!/usr/bin/env python3
"""tokenizer_ref.py — development-only reference for the CLIP tokenizer (never used by the build
or at run time). It follows OpenAI CLIP's simple_tokenizer with the cleaning described in
../shared/README.md (NFC in place of ftfy), and was checked against all 4,042 lines of
tokenizer_golden.jsonl. Needs Python 3 with the `regex` module.

  python3 scripts/tokenizer_ref.py check FILE.jsonl        # reference vs a golden file
  python3 scripts/tokenizer_ref.py edge > tests/data/tokenizer_edge.jsonl
  python3 scripts/tokenizer_ref.py diff N build/clipadapt  # N random texts: reference vs the CLI
"""
import gzip
import html
import json
import random
import re
import subprocess
import sys
import unicodedata

import regex

BPE = "../shared/clip/bpe_simple_vocab_16e6.txt.gz"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class Tokenizer:
    def __init__(self, path=BPE):
        self.byte_encoder = bytes_to_unicode()
        merges = gzip.open(path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pat = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                                 regex.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word[:-1], word[1:]))
            first, second = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if (first, second) not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        self.cache[token] = " ".join(word)
        return self.cache[token]

    def encode(self, text):
        text = unicodedata.normalize("NFC", text)
        text = html.unescape(html.unescape(text)).strip()
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for tok in self.pat.findall(text):
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(tok).split(" "))
        return ids


EDGE = [
    # HTML: named with and without ';', longest-prefix fallback, numeric rules, double unescape
    "&amp;", "&amp", "&AMP;", "&ampere;", "&notit;", "&notin;", "&not", "&copy2024", "&lt;b&gt;",
    "&amp;lt;", "&amp;amp;amp;", "&#65;&#x42;&#X43;", "&#0;", "&#13;", "&#128;", "&#x80;", "&#x81;",
    "&#x9F;", "&#1;", "&#11;", "&#x7f;", "&#xFDD0;", "&#xFFFE;", "&#x10FFFF;", "&#x110000;",
    "&#xD800;", "&#99999999999999999999;", "&#65", "&#x41x", "&#", "&#x", "&#xg;", "& amp;", "&;",
    "&&amp;&", "a&b", "&nbsp;x&nbsp", "&NotEqualTilde;", "&acE;", "&fjlig;", "&ThickSpace;",
    "&abcdefghijklmnopqrstuvwxyz0123456789;", "&amp" + "x" * 40, "&frac12;&frac34", "&sup2;3",
    "&eacute;t&eacute;", "&Eacute;T&Eacute;", "&#x130;stanbul", "&#931;&#927;&#931;", "&lt;|endoftext|&gt;",
    "&apos;s", "don&#39;t", "&quot;hi&quot;", "&#x27;re", "\u00e9&amp;", "&é", "&\u00e9acute;",
    # whitespace (Python isspace vs regex \s), strip, collapse
    "a\u00a0b", "a\u2003b", "a\u3000b", "a\u1680b", "a\u200bb", "a\u2028b", "a\x1cb\x1fc",
    "\u0085x\u0085", "\u00a0\u00a0", "a \t\r\n\x0b\x0c b", "&#32;&#32;x", "x&#10;y", "&#x2003;z",
    # case: full and final-sigma lowercasing, İ, Kelvin, long s, Greek
    "İstanbul", "İ", "KELVIN \u212a", "ΟΔΥΣΣΕΥΣ", "Σ", "ΑΣ.", "ΑΣ'Β", "Σ.Σ", "AΣ\u0301", "ΑΣΑ",
    "ΑΣ\u00adΑ", "ΑΣ1", "ⅫΣ", "ⒶΣ", "ªΣ", "\U0001F130Σ", "ʰΣ", "Σʰ", "ǅungla", "ß ẞ", "Ω Å K",
    "\u0345", "a\u0345b", "\u1fb3", "\u03b1\u0345", "ﬁne ﬂow", "ＡＢＣ１２３", "Ⅻ", "①②", "½",
    # contractions and the special-token pattern (case-insensitive, long s)
    "it's", "IT'S", "'s", "'st", "''s", "x'll'd'm", "'ſ", "'ſtart", "<|startoftext|>",
    "<|STARTOFTEXT|>", "<|ſtartoftext|>", "<|endoftext|><|endoftext|>", "!<|endoftext|>",
    "<|endoftext", "a<|startoftext|>b", "'Ve 'RE", "rock'n'roll", "l'été",
    # numbers, punctuation, symbols, scripts
    "٣٤٥", "१२३", "3.5e-10", "$1,000,000", "@#%^*()_+=[]{}", "...", "—–-", "«»„“”", "¿¡", "™®©",
    "한국어 텍스트", "ไทย", "עברית", "العربية", "हिन्दी", "日本語", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🏳️‍🌈", "👩🏽‍💻",
    "e\u0301", "e\u0301\u0327", "\u0041\u030a", "\u212b", "\uac00\u11a8", "\u1100\u1161\u11a8",
    "x\x00y", "\x7f", "\ufeffbom", "\ufffd", "\U0010fffd", "\U000e0041", "tab\there",
    "a" * 300, "ab" * 200, "the" * 50, "0123456789" * 10, "!" * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def edge():
    t = Tokenizer()
    for s in EDGE:
        if "\x00" in s:  # C strings cannot carry NUL; the CLI test covers it
            continue
        print(json.dumps({"text": s, "ids": t.encode(s)}, ensure_ascii=False))


def check(path):
    t = Tokenizer()
    bad = n = 0
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        n += 1
        if t.encode(d["text"]) != d["ids"]:
            bad += 1
            print("mismatch:", repr(d["text"]))
    print(n, "lines,", bad, "mismatches")
    return bad == 0


ALPHABET = (list("aAbBsSzZ019 '&;#xX<|>.,!?-\t") + ["&amp;", "&lt", "&#", "&#x", "'s", "'ll", "<|endoftext|>"] +
            ["\u00e9", "e\u0301", "\u0130", "\u03a3", "\u03c3", "\u017f", "\u212a", "\u0345", "\u00a0", "\u3000",
             "\u1c00", "\u0660", "\u00bd", "\u00df", "\u01c5", "\u2160", "\u24b6", "\u00aa", "\u02b0", "\u00ad",
             "\u200b", "\u0301", "\u0327", "\uac00", "\u11a8", "\u4e2d", "\u3042", "\U0001f436", "\u200d",
             "\ufe0f", "\x1c", "\x85", "\u2028", "\U0001d518", "\u0627", "\u0915\u094d"])


def diff(n, binary):
    t = Tokenizer()
    rng = random.Random(1234)
    texts = []
    for _ in range(n):
        k = rng.randint(0, 24)
        s = "".join(rng.choice(ALPHABET) for _ in range(k))
        if rng.random() < 0.2:
            s = "".join(chr(rng.randint(1, 0x2FFFF)) for _ in range(rng.randint(1, 8)))
        s = "".join(c for c in s if c not in "\n\r" and not 0xD800 <= ord(c) < 0xE000)
        texts.append(s)
    out = subprocess.run([binary, "tokenize", "--bpe", BPE], input="\n".join(texts).encode("utf-8") + b"\n",
                         capture_output=True, check=True).stdout.decode().splitlines()
    bad = 0
    for s, got in zip(texts, out):
        want = t.encode(s)
        if json.loads(got) != want:
            bad += 1
            if bad <= 20:
                print("mismatch:", ascii(s), "got", got, "want", want)
    print(n, "random texts,", bad, "mismatches")
    return bad == 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "edge":
        edge()
    elif cmd == "check":
        sys.exit(0 if check(sys.argv[2]) else 1)
    elif cmd == "diff":
        sys.exit(0 if diff(int(sys.argv[2]), sys.argv[3]) else 1)
    else:
        print(__doc__)
        sys.exit(2)
