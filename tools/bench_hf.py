#!/usr/bin/env python3
"""Peer benchmark: HF transformers' Mamba2ForCausalLM (PyTorch path) on the same shapes as `mamba-cli bench`.

Random weights, batch 1. Prints JSON with prefill and decode tokens/s.
  python3 tools/bench_hf.py --config 130m --device cpu --threads 2 --dtype f32 --prompt-len 512 --gen 16
"""
import argparse, json, time

import torch
from transformers import Mamba2Config, Mamba2ForCausalLM

PRESETS = {"130m": (768, 24), "370m": (1024, 48), "780m": (1536, 48), "1.3b": (2048, 48), "2.7b": (2560, 64)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="130m", choices=PRESETS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--gen", type=int, default=16)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d, n = PRESETS[a.config]
    cfg = Mamba2Config(hidden_size=d, num_hidden_layers=n, state_size=128, head_dim=64, num_heads=2 * d // 64, expand=2,
                       n_groups=1, chunk_size=256, vocab_size=50288, tie_word_embeddings=True)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
    model = Mamba2ForCausalLM(cfg).to(device=a.device, dtype=dtype).eval()
    ids = torch.randint(0, 50277, (1, a.prompt_len), device=a.device)
    sync = (lambda: torch.cuda.synchronize()) if a.device.startswith("cuda") else (lambda: None)
    with torch.no_grad():
        model(ids[:, :16], use_cache=False)  # warm-up
        sync()
        def timed_forward():
            t0 = time.perf_counter()
            model(ids, use_cache=True)
            sync()
            return time.perf_counter() - t0

        timed_forward()
        prefill = a.prompt_len / sorted(timed_forward() for _ in range(3))[1]
        # decode rate = the extra tokens over the extra time of a longer generate (the prefill cancels out);
        # one untimed generate first (its first call sets up caches), then the median of 3 of each length
        def timed_generate(n):
            t0 = time.perf_counter()
            model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
            sync()
            return time.perf_counter() - t0

        timed_generate(1)
        times = [sorted(timed_generate(n) for _ in range(3))[1] for n in (1, a.gen + 1)]
        decode = a.gen / max(times[1] - times[0], 1e-9)
    print(json.dumps({"peer": "transformers " + __import__("transformers").__version__ + ", torch " + torch.__version__,
                      "config": a.config, "device": a.device, "threads": a.threads, "dtype": a.dtype,
                      "prompt_len": a.prompt_len, "gen": a.gen, "prefill_tok_s": prefill,
                      "decode_tok_s": decode}, indent=2))


if __name__ == "__main__":
    main()
