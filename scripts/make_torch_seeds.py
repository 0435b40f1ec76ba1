#!/usr/bin/env python3
"""make_torch_seeds.py — writes the small hand-made PyTorch files of tests/fuzz/corpus/torchfile/
(the fuzz seeds, also read by tests/test_torchfile.c). Standard library only: the pickles are
spelled opcode by opcode, as torch.save / torch.jit.save lay them out, without torch.
Run from the repository root: python3 scripts/make_torch_seeds.py
"""
import io, os, pickle, struct, zipfile

OUT = "tests/fuzz/corpus/torchfile"


def s(x):            # BINUNICODE
    b = x.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def i(x):            # BININT
    return b"J" + struct.pack("<i", x)


def g(mod, name):    # GLOBAL
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def tup(*xs):
    return b"(" + b"".join(xs) + b"t"


def tensor(key, storage, numel, offset, size, stride, legacy=False):
    pid = tup(s("storage"), g("torch", storage), s(key), s("cpu"), i(numel), *( [b"N"] if legacy else []))
    return (g("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + b"Q" + i(offset) + tup(*map(i, size)) +
            tup(*map(i, stride)) + b"\x89" + g("collections", "OrderedDict") + b")R" + b"tR")


def odict(*kv):
    return g("collections", "OrderedDict") + b")R(" + b"".join(kv) + b"u"


def pkl(body):
    return b"\x80\x02" + body + b"."


def zipped(path, entries, method=zipfile.ZIP_STORED, zip64=False):
    with zipfile.ZipFile(os.path.join(OUT, path), "w", compression=method) as z:
        for name, data in entries:
            with z.open(name, "w", force_zip64=zip64) as f:
                f.write(data)


f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
# a (2,3) tensor, its transpose (a non-contiguous view of the same storage), a nested dict
state = odict(s("a"), tensor("0", "FloatStorage", 6, 0, [2, 3], [3, 1]),
              s("b"), tensor("0", "FloatStorage", 6, 0, [3, 2], [1, 3]),
              s("c"), b"}(" + s("d") + tensor("1", "HalfStorage", 2, 1, [1], [1]) + b"u",
              s("n"), i(7))
f16 = struct.pack("<2H", 0x3c00, 0x4000)  # 1.0, 2.0
zipped("state_dict.pt", [("archive/data.pkl", pkl(state)), ("archive/data/0", f32), ("archive/data/1", f16),
                         ("archive/version", b"3\n")])
zipped("deflated_zip64.pt", [("sd/data.pkl", pkl(state)), ("sd/data/0", f32), ("sd/data/1", f16)],
       zipfile.ZIP_DEFLATED, zip64=True)


def to_zip64_end(path):
    """Replace the classic end record by ZIP64's (record + locator + saturated classic record),
    as archives over 4 GB or 65535 entries carry it."""
    b = open(os.path.join(OUT, path), "rb").read()
    e = len(b) - 22
    assert b[e:e + 4] == b"PK\x05\x06"
    n, size, off = struct.unpack("<HII", b[e + 10:e + 20])
    rec = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, n, n, size, off)
    loc = struct.pack("<IIQI", 0x07064b50, 0, e, 1)
    end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
    open(os.path.join(OUT, path), "wb").write(b[:e] + rec + loc + end)


to_zip64_end("deflated_zip64.pt")
# a training checkpoint: {'epoch': 3, 'state_dict': {'module.x': tensor}}
wrapped = b"}(" + s("epoch") + i(3) + s("state_dict") + odict(s("module.x"), tensor("0", "FloatStorage", 6, 2, [4], [1])) + b"u"
zipped("train_ckpt.pt", [("ckpt/data.pkl", pkl(wrapped)), ("ckpt/data/0", f32)])
# a TorchScript module tree: GLOBAL __torch__ class, EMPTY_TUPLE, NEWOBJ, BUILD with attributes
sub = g("__torch__.m", "Linear") + b")\x81" + b"}(" + s("training") + b"\x88" + s("weight") + \
      tensor("0", "FloatStorage", 6, 0, [3, 2], [2, 1]) + b"ub"
top = g("__torch__.m", "Model") + b")\x81" + b"}(" + s("training") + b"\x88" + s("fc") + sub + s("act") + \
      g("__torch__.m", "QuickGELU") + b")\x81}bu" + b"b"
zipped("torchscript.pt", [("m/data.pkl", pkl(top)), ("m/data/0", f32), ("m/constants.pkl", pkl(b")")),
                          ("m/code/__torch__/m.py", b"# code\n")], zipfile.ZIP_DEFLATED)
# the legacy stream: magic, protocol, sys info, object, keys, then count + raw storage
obj = odict(s("w"), tensor("k", "HalfStorage", 2, 0, [2], [1], legacy=True))
legacy = (pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2) +
          pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2) + pkl(obj) +
          pickle.dumps(["k"], protocol=2) + struct.pack("<q", 2) + f16)
open(os.path.join(OUT, "legacy.pt"), "wb").write(legacy)
# refused and malformed files
zipped("evil.pt", [("archive/data.pkl", pkl(b"}" + s("x") + g("posix", "system") + s("touch /tmp/clipadapt-pwned") + b"\x85Rs")),
                   ("archive/version", b"3\n")])
zipped("view_out_of_range.pt", [("a/data.pkl", pkl(odict(s("a"), tensor("0", "FloatStorage", 6, 4, [3], [1])))), ("a/data/0", f32)])
zipped("bad_memo.pt", [("a/data.pkl", pkl(b"}h\x05")), ("a/data/0", f32)])
zipped("missing_storage.pt", [("a/data.pkl", pkl(odict(s("a"), tensor("9", "FloatStorage", 6, 0, [6], [1]))))])
