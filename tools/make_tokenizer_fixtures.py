#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/: small test tokenizers and the ids HF `tokenizers` gives for them.

tests/test_tokenizer.cpp compares engine/tokenizer.cpp against these expectations, id for id.

Files written:
  small_tokenizer.json           1000-token byte-level BPE trained on tinyshakespeare (NFC, ByteLevel,
                                 merges as pairs, <|endoftext|>/<|padding|> and whitespace-run tokens)
  small_seq_tokenizer.json       the same vocab with Sequence[Split(GPT-2), ByteLevel(add_prefix_space,
                                 use_regex=false)], "a b" merges, ignore_merges and lstrip / rstrip /
                                 single_word / normalized added tokens
  small_fallback_tokenizer.json  lead bytes 0xC0-0xFF dropped from the alphabet, byte_fallback on
  small_unk_tokenizer.json       the same alphabet hole, an <unk> token with fuse_unk
  small_affix_tokenizer.json     400 tokens with continuing_subword_prefix "##", end_of_word_suffix
                                 "</w>" and a Sequence[NFD, NFKC] normalizer
  cases.json                     test strings and their NFC, and per tokenizer: encode ids, decode(encode)
                                 where it is not NFC(x), and decode
                                 results for id lists (random ones and broken UTF-8 byte sequences)
The GPT-NeoX-20B tokenizer itself is not copied (it lives in ../shared/data); only its ids are stored.

The trained tokenizers (small, small_affix) are reused if present, so expectations do not churn; pass
--retrain to rebuild them.
Usage: tools/make_tokenizer_fixtures.py [--retrain]
"""
import argparse
import json
import os
import random
import unicodedata

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
NEOX = os.path.join(SHARED, "gpt-neox-20b-tokenizer.json")
SHAKESPEARE = os.path.join(SHARED, "tinyshakespeare.txt")

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()


# --- tokenizers ------------------------------------------------------------------------------------

def train_small(path):
    with open(SHAKESPEARE, encoding="utf-8") as f:
        text = f.read()[:300_000]
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<|endoftext|>", "<|padding|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text], trainer)
    # Like GPT-NeoX: runs of 2..8 spaces are added (normalized, non-special) tokens.
    tok.add_tokens([AddedToken(" " * n, normalized=True, special=False) for n in range(8, 1, -1)])
    tok.save(path)


def train_affix(path):
    with open(SHAKESPEARE, encoding="utf-8") as f:
        text = f.read()[:100_000]
    tok = Tokenizer(models.BPE(continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.NFKC()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  continuing_subword_prefix="##", end_of_word_suffix="</w>")
    tok.train_from_iterator([text], trainer)
    tok.save(path)


def renumber(d, drop=()):
    """Removes `drop` from the vocab and renumbers ids densely (HF assigns added-token ids from
    len(vocab), so a vocab with holes would make it disagree with the ids in the file)."""
    vocab = d["model"]["vocab"]
    keep = sorted((i, t) for t, i in vocab.items() if t not in drop)
    d["model"]["vocab"] = {t: n for n, (_, t) in enumerate(keep)}


def set_added(d, tokens):
    """Replaces the added tokens; ids continue after the vocab (or reuse a vocab id)."""
    vocab = d["model"]["vocab"]
    nxt = max(vocab.values()) + 1
    out = []
    for t in tokens:
        t = dict(dict(single_word=False, lstrip=False, rstrip=False, normalized=True, special=False), **t)
        if t["content"] in vocab:
            t["id"] = vocab[t["content"]]
        else:
            t["id"] = nxt
            nxt += 1
        out.append(t)
    d["added_tokens"] = out


def base_added():
    return [dict(content="<|endoftext|>", special=True, normalized=False),
            dict(content="<|padding|>", special=True, normalized=False)] + \
           [dict(content=" " * n) for n in range(8, 1, -1)]


def make_variants(small_path):
    with open(small_path, encoding="utf-8") as f:
        base = json.load(f)
    variants = {}

    d = json.loads(json.dumps(base))
    d["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": GPT2_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": False}]}
    d["model"]["merges"] = ["#version: 0.2"] + [f"{a} {b}" for a, b in d["model"]["merges"]]
    d["model"]["ignore_merges"] = True
    set_added(d, base_added() + [
        dict(content="<mask>", special=True, normalized=False, lstrip=True),
        dict(content="[SEP]", special=True, normalized=False, rstrip=True),
        dict(content="<both>", special=False, normalized=False, lstrip=True, rstrip=True),
        dict(content="Romeo", single_word=True),
        dict(content="café", normalized=True),
        dict(content="é!", normalized=False),
        dict(content="ab", single_word=True, normalized=False),
    ])
    variants["small_seq"] = d

    hole = [BYTE_CHAR[b] for b in range(0xC0, 0x100)]
    d = json.loads(json.dumps(base))
    renumber(d, drop=hole)
    n = len(d["model"]["vocab"])
    for b in range(256):
        d["model"]["vocab"][f"<0x{b:02X}>"] = n + b
    d["model"]["byte_fallback"] = True
    set_added(d, base_added())
    variants["small_fallback"] = d

    d = json.loads(json.dumps(base))
    renumber(d, drop=hole)
    d["model"]["vocab"]["<unk>"] = len(d["model"]["vocab"])
    d["model"]["unk_token"] = "<unk>"
    d["model"]["fuse_unk"] = True
    set_added(d, base_added() + [dict(content="<unk>", special=True, normalized=False)])
    variants["small_unk"] = d
    return variants


# --- test strings ----------------------------------------------------------------------------------

def fixed_strings():
    s = [
        "", " ", "a", "Hello, world!", "Hello world", "The quick brown fox jumps over the lazy dog.",
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n",
        "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun.",
        "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer",
        "def foo(x):\n\treturn x  # comment\n    if x:\n        pass\n",
        "int main() {\n    for (int i = 0; i < 10; ++i) {\n\t\tprintf(\"%d\\n\", i);\n    }\n}\n",
        "\tindented\n\t\ttwice\n  \t mixed \t\n", "x = {'a': [1, 2, 3], \"b\": None}  # dict",
        "  ", "   ", "    ", "     ", " " * 8, " " * 9, " " * 24, " " * 25, " " * 50, "a" + " " * 30 + "b",
        "trailing   ", "   leading", " a ", "a  b   c    d", "\n", "\n\n", "\n\n\n", "\r\n", "line1\r\nline2\r\n",
        "a\r\n\r\nb", " \n ", "\t \t", "\n \n  \n   x", "x\n  y", "\u00a0\u00a0 x", "a\u3000\u3000b", "\u2028\u2029",
        "\x0b\x0c", "\x85", "end\n", "   \n", " \t\n\r\x0b\x0c",
        "0", "123", "1234567890123456789012345", "3.14159", "1,000,000", "v1.2.3", "2024-01-15T10:30:00Z",
        "\u0660\u0661\u0662\u0663", "\uff11\uff12\uff13", "\u216b", "\u00bd", "x\u00b2 + y\u00b3", "$100.00", "50%",
        "don't", "I'm", "you're", "we've", "she'll", "he'd", "it's", "DON'T", "'s", "'", "''", "'''", "rock'n'roll",
        "y'all'd've", "the cat's 'sam'", "''s", "' s", " 'll", "Mc'Donald's",
        "caf\u00e9", "cafe\u0301", "na\u00efve", "Z\u00fcrich", "\u00c5ngstr\u00f6m", "e\u0301", "a\u0308",
        "A\u030a", "\u1e9b\u0323", "A\u0301\u0323", "\u0041\u0323\u0301", "\u1100\u1161\u11a8", "\ud55c\uad6d\uc5b4",
        "o\u0308\u0301", "\u0958", "\u212b", "\u2126", "\ufb01", "\u00c7a va?",
        "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", "\u4e2d\u6587\u6d4b\u8bd5\uff0c\u6807\u70b9\u3002",
        "\uff76\uff80\uff76\uff85", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
        "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5", "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd",
        "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e44\u0e17\u0e22", "\U0001f44d", "\U0001f44d\U0001f3fd",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", "\U0001f3f3\ufe0f\u200d\U0001f308",
        "\u2764\ufe0f", "\U0001f1eb\U0001f1f7", "a\U0001f44db", "\U0001f600" * 20, "I \u2764 NY \U0001f5fd!",
        "\x00", "\x01\x02\x1f", "\x7f", "a\x00b", "\x1c\x1d\x1e\x1f", "bell\x07", "esc\x1b[0m",
        "a\u200bb", "\u200c\u200d", "\u2060", "\ufeff", "\ufeffBOM at start", "x\ufeffy", "\u00ad",
        "Hello<|endoftext|>World", "<|endoftext|>", "<|endoftext|><|endoftext|>", "a <|padding|> b",
        "<|endoftext", "<|ENDOFTEXT|>", "  <|endoftext|>  ", "text.<|endoftext|>\n\nNext", "<|endoftext|>\u0301",
        "<mask>", "  <mask>  x", "a<mask>b", "[SEP]   y", "[SEP]", "x <both>  y", "<both>", "Romeo", "Romeos",
        "xRomeo", " Romeo!", "Romeo_", "Romeo\u00e9", "caf\u00e9 au lait", "cafe\u0301!", "\u00e9!", "e\u0301!",
        "ab", "abc", "x ab y", "ab_", "(ab)", "\u00e9ab", "a  b", "\u0100\u0101", "ab\u24d6", "\u24d0ab",
        "Romeo\U0001f130", "ab\u0301", "ab\u00b2", "ab\u2460", "ab\u203f", "ab\u200d", "\u3000<mask>",
        "<both>\u3000\u3000z", "<both>  <mask>", "\ufb01ab \u2460 \u00b5 \u2126 \uff21",
        "https://example.com/path?query=1&b=2#frag", '{"key": "value", "n": [1, 2.5, -3e10]}',
        "\u2211\u222b\u221a\u221e", "#hashtag @user", "C++ && || != ==", "<html><body></body></html>", "...",
        "\u2014 \u201cquotes\u201d \u2018single\u2019", "\\n literal", "pneumonoultramicroscopicsilicovolcanoconiosis",
        "a" * 500, "ab" * 300, "Supercalifragilisticexpialidocious" * 20, " ".join(["word"] * 100),
        "\u00ff\u00fe\u00c0\u00d0", "\u0120\u010a", "\U00010348", "\U000e0041", "\U0010fffd", "\ue000",
    ]
    return s


def random_char(rng):
    pools = [
        (30, lambda: chr(rng.randint(0x20, 0x7e))),
        (10, lambda: rng.choice(" \t\n\r\x0b\x0c\x85\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000")),
        (6, lambda: rng.choice(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'", " '"])),
        (6, lambda: chr(rng.randint(0xa0, 0x24f))),
        (6, lambda: chr(rng.randint(0x300, 0x36f))),
        (4, lambda: chr(rng.randint(0x370, 0x52f))),
        (3, lambda: chr(rng.randint(0x590, 0x6ff))),
        (3, lambda: chr(rng.randint(0x900, 0xdff))),
        (5, lambda: chr(rng.randint(0x4e00, 0x9fff))),
        (3, lambda: chr(rng.randint(0x3040, 0x30ff))),
        (3, lambda: chr(rng.randint(0xac00, 0xd7a3))),
        (2, lambda: chr(rng.randint(0x1100, 0x11ff))),
        (5, lambda: chr(rng.randint(0x1f300, 0x1faff))),
        (3, lambda: rng.choice(["\u200d", "\ufe0f", "\U0001f3fb", "\U0001f3ff", "\u200b", "\ufeff", "\u2060"])),
        (2, lambda: chr(rng.randint(0x0, 0x1f))),
        (2, lambda: chr(rng.randint(0x2000, 0x2bff))),
        (2, lambda: chr(rng.randint(0xff00, 0xffef))),
        (2, lambda: rng.choice(["<|endoftext|>", "<|padding|>", "<mask>", "[SEP]", "Romeo", "caf\u00e9", "ab"])),
        (6, lambda: chr(rng.randint(0x80, 0x10ffff))),
    ]
    total = sum(w for w, _ in pools)
    while True:
        r = rng.uniform(0, total)
        for w, f in pools:
            r -= w
            if r <= 0:
                s = f()
                break
        # Assigned characters only (Python's Unicode 14): unassigned ones have no stable class, and
        # tokenizers, utf8proc and Oniguruma each use a different Unicode version.
        if all(0xD800 > ord(c) or ord(c) > 0xDFFF for c in s) and all(unicodedata.category(c) != "Cn" for c in s):
            return s


def random_strings(n, seed):
    rng = random.Random(seed)
    hf_nfc = normalizers.NFC()
    hf_nfkc = normalizers.NFKC()
    out = []
    while len(out) < n:
        s = "".join(random_char(rng) for _ in range(rng.randint(1, 40)))
        # tokenizers' own normalization tables predate Unicode 10; skip the rare strings where that shows.
        if hf_nfc.normalize_str(s) != unicodedata.normalize("NFC", s) or \
                hf_nfkc.normalize_str(s) != unicodedata.normalize("NFKC", s):
            continue
        out.append(s)
    return out


def long_text():
    with open(SHAKESPEARE, encoding="utf-8") as f:
        text = f.read()[500_000:560_000]
    rng = random.Random(7)
    words = ["the", "and", "caf\u00e9", "na\u00efve", "\u65e5\u672c", "\u0416\u0443\u043a", "\U0001f600", "don't",
             "x=1;", "\t", "    ", "\n", "  ", "1234", "<|endoftext|>", "\u0645\u0631\u062d\u0628\u0627", "'ll"]
    parts = [text]
    size = len(text.encode("utf-8"))
    while size < 100_000:
        w = rng.choice(words) + rng.choice(["", " ", " ", "\n", ", "])
        parts.append(w)
        size += len(w.encode("utf-8"))
    return "".join(parts)


def decode_id_lists(tok, vocab_size, seed):
    """Random id lists (with ids beyond the vocab) and byte sequences that are broken UTF-8."""
    rng = random.Random(seed)
    lists = [[rng.randint(0, vocab_size + 8) for _ in range(rng.randint(1, 24))] for _ in range(150)]
    byte_id = {b: tok.token_to_id(BYTE_CHAR[b]) for b in range(256)}
    broken = [b"\xe2\x82", b"\xe2\x82\xac", b"\xf0\x9f\x98a", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
              b"\xe0\x80\x80", b"\xff", b"ab\x80cd", b"\xf0\x9f\x98\x80", b"\xc3", b"\xc3(", b"\xe2\x28\xa1",
              b"\xf0\x28\x8c\xbc", b"\xf8\xa1\xa1\xa1\xa1", b"\xe6\x97\xa5\xe6\x9c"]
    for bs in broken:
        ids = [byte_id[b] for b in bs]
        if None not in ids:
            lists.append(ids)
    return lists


def expectations(tok, strings, vocab_size, seed, with_long, long):
    enc = [tok.encode(s, add_special_tokens=False).ids for s in strings]
    out = {
        "encode": enc,
        # decode(encode(x)); null where it equals NFC(x), which is nearly always.
        "roundtrip": [None if r == unicodedata.normalize("NFC", s) else r
                      for s, r in zip(strings, (tok.decode(ids, skip_special_tokens=False) for ids in enc))],
        "decode": [],
    }
    for ids in decode_id_lists(tok, vocab_size, seed):
        out["decode"].append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                              "text_skip": tok.decode(ids, skip_special_tokens=True)})
    if with_long:
        out["long_ids"] = tok.encode(long, add_special_tokens=False).ids
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retrain", action="store_true", help="retrain small_tokenizer.json")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    small_path = os.path.join(OUT, "small_tokenizer.json")
    if args.retrain or not os.path.exists(small_path):
        train_small(small_path)
    files = {"small": small_path}
    affix_path = os.path.join(OUT, "small_affix_tokenizer.json")
    if args.retrain or not os.path.exists(affix_path):
        train_affix(affix_path)
    for name, d in make_variants(small_path).items():
        path = os.path.join(OUT, f"{name}_tokenizer.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f, ensure_ascii=False, separators=(",", ":"))
        files[name] = path
    files["small_affix"] = affix_path

    strings = fixed_strings() + random_strings(300, seed=1234)
    long = long_text()
    cases = {"strings": strings, "long_text": long,
             "nfc": [unicodedata.normalize("NFC", s) for s in strings], "tokenizers": {}}
    for name, path in [("neox", NEOX)] + list(files.items()):
        tok = Tokenizer.from_file(path)
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        for t in d["added_tokens"]:  # our C++ trusts the file's ids; HF recomputes them
            assert tok.token_to_id(t["content"]) == t["id"], (name, t)
        vocab_size = max(list(d["model"]["vocab"].values()) + [t["id"] for t in d["added_tokens"]]) + 1
        exp = expectations(tok, strings, vocab_size, seed=99, with_long=name in ("neox", "small"), long=long)
        exp["file"] = "../shared/data/gpt-neox-20b-tokenizer.json" if name == "neox" else \
            "tests/fixtures/tokenizer/" + os.path.basename(path)
        exp["vocab_size"] = vocab_size
        cases["tokenizers"][name] = exp
        if name in ("neox", "small"):
            bad = [s for s, r in zip(strings, exp["roundtrip"]) if r is not None]
            print(f"{name}: {len(bad)} strings where decode(encode(x)) != NFC(x): {bad[:5]}")
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=True, separators=(",", ":"))
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"wrote {OUT}: {len(strings)} strings, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
