#!/usr/bin/env python3
"""Times Hugging Face `tokenizers` encoding tinyshakespeare with the GPT-NeoX-20B tokenizer.

The reference point for engine/tokenizer.cpp's speed: the C++ encoder should beat this single-threaded.
Usage: tools/bench_tokenizer.py [--tokenizer FILE] [--text FILE] [--repeats N]
"""
import argparse
import os
import time

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default=os.path.join(SHARED, "gpt-neox-20b-tokenizer.json"))
    ap.add_argument("--text", default=os.path.join(SHARED, "tinyshakespeare.txt"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    # Single-threaded, like our encoder; the Rust side would otherwise use a thread pool for batches.
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    tok = Tokenizer.from_file(args.tokenizer)
    with open(args.text, encoding="utf-8", newline="") as f:  # keep \r\n as is
        text = f.read()
    mb = len(text.encode("utf-8")) / 1e6

    # The first call also warms HF's word cache; report it separately from the best repeat.
    t0 = time.perf_counter()
    ids = tok.encode(text, add_special_tokens=False).ids
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        tok.encode(text, add_special_tokens=False)
        best = min(best, time.perf_counter() - t0)
    print(f"HF tokenizers: {mb:.3f} MB -> {len(ids)} ids; first {first * 1e3:.1f} ms "
          f"({mb / first:.2f} MB/s), best of {args.repeats} {best * 1e3:.1f} ms ({mb / best:.2f} MB/s)")


if __name__ == "__main__":
    main()
