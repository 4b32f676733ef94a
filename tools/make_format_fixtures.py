#!/usr/bin/env python3
"""Tiny checkpoints in every format the engine reads, with float64 references, for the C++ tests.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers safetensors gguf numpy
    /tmp/venv/bin/python tools/make_format_fixtures.py      # (re)writes tests/fixtures/formats/**

Fixtures (each folder holds the checkpoint and reference.json):
  mamba1_hf          HF MambaForCausalLM.save_pretrained (config.json + model.safetensors), f32, untied
  mamba1_hf_bias     HF MambaForCausalLM, bf16, tied, in/out_proj biases, conv_kernel 3, dt_rank 3
  mamba1_original    mamba1_hf's weights in mamba_ssm's layout (backbone.embedding...), saved by torch.save
                     as pytorch_model.bin in float16, with a mamba_ssm config.json (Mamba1, vocab padded)
  mamba2_original    an HF Mamba2ForCausalLM re-saved the same way: bf16 pytorch_model.bin, tied (lm_head
                     and the embedding share one storage), mamba_ssm config (Mamba2, vocab padded)
  mambac             mamba.c's export.py layout (model.bin: 256-byte header, then f32 weights by kind)
  gguf_mamba1        general.architecture "mamba" as llama.cpp's convert_hf_to_gguf.py writes it: A stored
                     as -exp(A_log), conv squeezed, the output omitted when tied; Q8_0 matrices, F32 rest;
                     the GPT-2-style tokenizer of tests/fixtures/tokenizer/small_tokenizer.json in metadata
  gguf_mamba2        "mamba2": dt_bias as ssm_dt.bias, A and D as (H, 1), the gated norm as (G, E/G);
                     F16 and BF16 tensors, untied output, the same tokenizer

The reference is an independent float64 implementation written here (sequential scans), run on the
weights as stored (rounded / dequantised), checked against HF transformers in float32 (< 1e-4) where HF
can load the files. reference.json: input_ids, logits (T x V), greedy_ids (12, 6 for the GGUFs), decode_logits (one row per
greedy id), vocab_valid (greedy never picks a padded id).
"""

from __future__ import annotations

import collections
import json
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers import MambaConfig, MambaForCausalLM, Mamba2Config, Mamba2ForCausalLM
from safetensors import safe_open

import gguf
from gguf import GGMLQuantizationType as QT

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "formats"
TOKENIZER = REPO / "tests" / "fixtures" / "tokenizer" / "small_tokenizer.json"
GREEDY_NEW = 12
MIN_GAP = 0.05
SIZE_LIMIT = 2 * 1024 * 1024

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()


# ------------------------------------------------------------------------------------------------
# Independent float64 references
# ------------------------------------------------------------------------------------------------
def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def causal_conv(x, w, b):
    """x (T, C), w (C, K), b (C) or None: depthwise, zero left padding."""
    T, K = x.shape[0], w.shape[1]
    out = torch.zeros_like(x)
    for t in range(T):
        for k in range(K):
            s = t - (K - 1) + k
            if s >= 0:
                out[t] += w[:, k] * x[s]
    return out if b is None else out + b


def mamba1_forward(sd, c, ids):
    """sd: HF names -> float64 (A given as A = -exp(A_log) under 'mixer.A')."""
    E, N, R, eps = c["d_inner"], c["d_state"], c["dt_rank"], c["eps"]
    x = sd["backbone.embeddings.weight"][torch.tensor(ids)]
    T = len(ids)
    for l in range(c["n_layer"]):
        p = f"backbone.layers.{l}."
        h = rmsnorm(x, sd[p + "norm.weight"], eps)
        xz = h @ sd[p + "mixer.in_proj.weight"].T
        if p + "mixer.in_proj.bias" in sd:
            xz = xz + sd[p + "mixer.in_proj.bias"]
        xs, z = xz.split([E, E], dim=-1)
        xs = F.silu(causal_conv(xs, sd[p + "mixer.conv1d.weight"][:, 0, :], sd.get(p + "mixer.conv1d.bias")))
        dbc = xs @ sd[p + "mixer.x_proj.weight"].T
        dtl, B, C = dbc.split([R, N, N], dim=-1)
        dt = F.softplus(dtl @ sd[p + "mixer.dt_proj.weight"].T + sd[p + "mixer.dt_proj.bias"])
        A, D = sd[p + "mixer.A"], sd[p + "mixer.D"]
        state = torch.zeros(E, N, dtype=torch.float64)
        y = torch.zeros(T, E, dtype=torch.float64)
        for t in range(T):
            state = torch.exp(dt[t][:, None] * A) * state + (dt[t] * xs[t])[:, None] * B[t][None, :]
            y[t] = state @ C[t] + D * xs[t]
        y = y * F.silu(z)
        out = y @ sd[p + "mixer.out_proj.weight"].T
        if p + "mixer.out_proj.bias" in sd:
            out = out + sd[p + "mixer.out_proj.bias"]
        x = x + out
    x = rmsnorm(x, sd["backbone.norm_f.weight"], eps)
    lm = sd.get("lm_head.weight", sd["backbone.embeddings.weight"]) if not c["tied"] else sd["backbone.embeddings.weight"]
    return x @ lm.T


def mamba2_forward(sd, c, ids):
    """Mamba-2 with the grouped gated RMSNorm of mamba_ssm; A under 'mixer.A' (negative)."""
    nh, hd, G, N, eps = c["n_heads"], c["head_dim"], c["n_groups"], c["d_state"], c["eps"]
    E = nh * hd
    x = sd["backbone.embeddings.weight"][torch.tensor(ids)]
    T = len(ids)
    for l in range(c["n_layer"]):
        p = f"backbone.layers.{l}."
        h = rmsnorm(x, sd[p + "norm.weight"], eps)
        zxbcdt = h @ sd[p + "mixer.in_proj.weight"].T
        z, xBC, dtr = zxbcdt.split([E, E + 2 * G * N, nh], dim=-1)
        xBC = F.silu(causal_conv(xBC, sd[p + "mixer.conv1d.weight"][:, 0, :], sd.get(p + "mixer.conv1d.bias")))
        xs, B, C = xBC.split([E, G * N, G * N], dim=-1)
        dt = F.softplus(dtr + sd[p + "mixer.dt_bias"])
        A, D = sd[p + "mixer.A"], sd[p + "mixer.D"]
        state = torch.zeros(nh, hd, N, dtype=torch.float64)
        ys = torch.zeros(T, nh, hd, dtype=torch.float64)
        hpg = nh // G
        for t in range(T):
            xt = xs[t].view(nh, hd)
            Bt = B[t].view(G, N).repeat_interleave(hpg, dim=0)
            Ct = C[t].view(G, N).repeat_interleave(hpg, dim=0)
            state = state * torch.exp(dt[t] * A)[:, None, None] + dt[t][:, None, None] * xt[:, :, None] * Bt[:, None, :]
            ys[t] = torch.einsum("hpn,hn->hp", state, Ct) + D[:, None] * xt
        y = ys.reshape(T, E) * F.silu(z)
        g = y.view(T, G, E // G)
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + eps)
        y = sd[p + "mixer.norm.weight"] * g.reshape(T, E)
        x = x + y @ sd[p + "mixer.out_proj.weight"].T
    x = rmsnorm(x, sd["backbone.norm_f.weight"], eps)
    lm = sd["backbone.embeddings.weight"] if c["tied"] else sd["lm_head.weight"]
    return x @ lm.T


def with_A(sd):
    """A = -exp(A_log) under 'mixer.A' (float64)."""
    out = dict(sd)
    for k in list(sd):
        if k.endswith("mixer.A_log"):
            out[k[: -len("A_log")] + "A"] = -torch.exp(sd[k])
            del out[k]
    return out


def greedy(forward, ids, n, n_valid):
    """Greedy over the real vocabulary: padded embedding rows (ids >= n_valid) are never picked."""
    seq, rows = list(ids), []
    for _ in range(n):
        r = forward(seq)[-1]
        rows.append(r)
        seq.append(int(r[:n_valid].argmax()))
    return seq[len(ids):], torch.stack(rows)


def top2_gap(rows, n_valid):
    s = rows[:, :n_valid].sort(dim=-1, descending=True).values
    return (s[:, 0] - s[:, 1]).min().item()


def pick_prompt(forward, vocab, T, seed, n_new):
    for attempt in range(100):
        ids = torch.randint(0, vocab, (T,), generator=torch.Generator().manual_seed(seed * 1000 + attempt)).tolist()
        g, rows = greedy(forward, ids, n_new, vocab)
        if top2_gap(rows, vocab) >= MIN_GAP:
            return ids, g, rows
    raise RuntimeError("no prompt with a clear greedy continuation")


def fmt_rows(rows):
    return "[\n" + ",\n".join("    [" + ", ".join(repr(float(v)) for v in r) + "]" for r in rows.tolist()) + "\n  ]"


def write_reference(d: Path, forward, vocab_valid, T, seed, description, extra=None, n_new=GREEDY_NEW):
    ids, g, rows = pick_prompt(forward, vocab_valid, T, seed, n_new)
    logits = forward(ids)
    ref = {"description": description, "input_ids": ids, "logits": logits, "greedy_ids": g, "decode_logits": rows,
           "greedy_min_top2_gap": top2_gap(rows, vocab_valid), "vocab_valid": vocab_valid}
    if extra:
        ref.update(extra)
    parts = []
    for k, v in ref.items():
        parts.append(f"  {json.dumps(k)}: {fmt_rows(v) if isinstance(v, torch.Tensor) else json.dumps(v)}")
    (d / "reference.json").write_text("{\n" + ",\n".join(parts) + "\n}\n")
    return ids, logits


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


# ------------------------------------------------------------------------------------------------
# Random weights
# ------------------------------------------------------------------------------------------------
def inv_softplus(y):
    return y + torch.log(-torch.expm1(-y))


@torch.no_grad()
def randomise(model, g):
    def N(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float32)

    def U(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float32)

    for name, p in model.named_parameters():
        if name.endswith("A_log"):
            p.copy_(torch.log(U(0.5, 8.0, *p.shape)))
        elif name.endswith("dt_proj.bias") or name.endswith("dt_bias"):
            p.copy_(inv_softplus(torch.exp(U(math.log(0.01), math.log(1.0), *p.shape))))
        elif name.endswith(".D"):
            p.copy_(N(*p.shape))
        elif name.endswith("norm.weight") or name.endswith("norm_f.weight"):
            p.copy_(1 + 0.3 * N(*p.shape))
        elif name.endswith("embeddings.weight"):
            p.copy_(0.5 * N(*p.shape))
        elif name.endswith("bias"):
            p.copy_(0.2 * N(*p.shape))
        elif p.dim() >= 2:
            fan_in = p.shape[-1] if p.dim() == 2 else p.shape[-1]
            p.copy_(N(*p.shape) / math.sqrt(fan_in))
            if name.endswith("lm_head.weight"):
                p.mul_(2.0)


def f64(sd):
    return {k: v.detach().to(torch.float64).clone() for k, v in sd.items()}


def fresh(d: Path):
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------
def mamba1_cfg_dict(cfg: MambaConfig):
    return dict(d_inner=cfg.intermediate_size, d_state=cfg.state_size, dt_rank=cfg.time_step_rank, eps=cfg.layer_norm_epsilon,
                n_layer=cfg.num_hidden_layers, tied=cfg.tie_word_embeddings)


def build_mamba1_hf(name, cfg_kw, dtype, seed, T, description):
    d = OUT / name
    fresh(d)
    cfg = MambaConfig(**cfg_kw)
    torch.manual_seed(seed)
    model = MambaForCausalLM(cfg)
    randomise(model, torch.Generator().manual_seed(seed))
    model.to(dtype).save_pretrained(d)
    for extra in ("generation_config.json",):
        (d / extra).unlink(missing_ok=True)
    with safe_open(d / "model.safetensors", "pt") as f:
        sd = {k: f.get_tensor(k).to(torch.float64) for k in f.keys()}
    c = mamba1_cfg_dict(cfg)
    sd64 = with_A(sd)
    fwd = lambda ids: mamba1_forward(sd64, c, ids)
    ids, logits = write_reference(d, fwd, cfg.vocab_size, T, seed, description)
    # HF (float32 internals) agrees with the float64 reference
    hf = MambaForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    with torch.no_grad():
        hf_logits = hf(torch.tensor([ids]), use_cache=False).logits[0].double()
    r = rel(hf_logits, logits)
    assert r < 1e-4, (name, r)
    print(f"{name}: HF float32 vs float64 reference rel {r:.1e}")
    return model, cfg, sd


def build_mamba1_original(src_sd, cfg: MambaConfig, vocab_valid, pad_mult, seed, T):
    d = OUT / "mamba1_original"
    fresh(d)
    sd = {("backbone.embedding.weight" if k == "backbone.embeddings.weight" else k): v.to(torch.float16).contiguous()
          for k, v in src_sd.items()}
    torch.save(sd, d / "pytorch_model.bin")
    conf = {"d_model": cfg.hidden_size, "d_intermediate": 0, "n_layer": cfg.num_hidden_layers, "vocab_size": vocab_valid,
            "ssm_cfg": {"d_state": cfg.state_size, "d_conv": cfg.conv_kernel, "expand": cfg.expand, "dt_rank": cfg.time_step_rank},
            "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
            "pad_vocab_size_multiple": pad_mult, "tie_embeddings": cfg.tie_word_embeddings}
    (d / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    loaded = torch.load(d / "pytorch_model.bin", weights_only=True)
    sd64 = with_A({("backbone.embeddings.weight" if k == "backbone.embedding.weight" else k): v.to(torch.float64) for k, v in loaded.items()})
    c = mamba1_cfg_dict(cfg)
    write_reference(d, lambda ids: mamba1_forward(sd64, c, ids), vocab_valid, T, seed,
                    "mamba1_hf's weights in mamba_ssm's layout, float16, torch.save zip format; vocab padded from "
                    f"{vocab_valid} to a multiple of {pad_mult}")


def build_mamba2_original(seed, T):
    d = OUT / "mamba2_original"
    fresh(d)
    vocab_valid, pad = 90, 16
    V = -(vocab_valid // -pad) * pad
    cfg = Mamba2Config(vocab_size=V, hidden_size=32, num_hidden_layers=2, expand=2, num_heads=8, head_dim=8, n_groups=2,
                       state_size=8, chunk_size=8, conv_kernel=4, tie_word_embeddings=True, use_conv_bias=True, use_bias=False,
                       layer_norm_epsilon=1e-5)
    torch.manual_seed(seed)
    model = Mamba2ForCausalLM(cfg)
    randomise(model, torch.Generator().manual_seed(seed))
    model.to(torch.bfloat16)
    state = model.state_dict()
    sd = collections.OrderedDict(
        (("backbone.embedding.weight" if k == "backbone.embeddings.weight" else k), v) for k, v in state.items())
    # mamba_ssm's state dict carries lm_head.weight even when tied: the same storage as the embedding; and
    # like every module's state dict, its _metadata attribute (pickled as a BUILD on the OrderedDict).
    sd["lm_head.weight"] = sd["backbone.embedding.weight"]
    sd._metadata = state._metadata
    torch.save(sd, d / "pytorch_model.bin")
    conf = {"d_model": 32, "d_intermediate": 0, "n_layer": 2, "vocab_size": vocab_valid,
            "ssm_cfg": {"layer": "Mamba2", "d_state": 8, "d_conv": 4, "expand": 2, "headdim": 8, "ngroups": 2, "chunk_size": 8},
            "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
            "pad_vocab_size_multiple": pad, "tie_embeddings": True}
    (d / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    loaded = torch.load(d / "pytorch_model.bin", weights_only=True)
    sd64 = with_A({("backbone.embeddings.weight" if k == "backbone.embedding.weight" else k): v.to(torch.float64)
                   for k, v in loaded.items() if k != "lm_head.weight"})
    c = dict(n_heads=8, head_dim=8, n_groups=2, d_state=8, eps=1e-5, n_layer=2, tied=True)
    fwd = lambda ids: mamba2_forward(sd64, c, ids)
    ids, logits = write_reference(d, fwd, vocab_valid, T, seed,
                                  "HF Mamba2ForCausalLM re-saved in mamba_ssm's layout (bfloat16, tied: lm_head shares the "
                                  f"embedding's storage), mamba_ssm config with Mamba2, vocab padded from {vocab_valid} to {V}")
    hf = Mamba2ForCausalLM(cfg).eval()
    hf.load_state_dict({("backbone.embeddings.weight" if k == "backbone.embedding.weight" else k): v.float()
                        for k, v in loaded.items()}, strict=False)
    hf.lm_head.weight = hf.backbone.embeddings.weight
    with torch.no_grad():
        r = rel(hf(torch.tensor([ids]), use_cache=False).logits[0].double(), logits)
    assert r < 1e-4, r
    print(f"mamba2_original: HF float32 vs float64 reference rel {r:.1e}")


def build_mambac(seed, T):
    """mamba.c export.py: magic 'Mamb', version 1, 8 int32 (n_layers, vocab_size, d_model, d_inner, dt_rank,
    d_state, d_conv, shared_classifier), zero padding to 256 bytes, then f32 weights grouped by kind."""
    d = OUT / "mambac"
    fresh(d)
    vocab_valid = 101
    V = -(vocab_valid // -8) * 8
    cfg = MambaConfig(vocab_size=V, hidden_size=16, num_hidden_layers=2, state_size=4, expand=2, conv_kernel=4,
                      time_step_rank=2, tie_word_embeddings=False, use_conv_bias=True, use_bias=False)
    torch.manual_seed(seed)
    model = MambaForCausalLM(cfg)
    randomise(model, torch.Generator().manual_seed(seed))
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    L, E = cfg.num_hidden_layers, cfg.intermediate_size
    with open(d / "model.bin", "wb") as f:
        f.write(struct.pack("I", 0x4D616D62))
        f.write(struct.pack("i", 1))
        f.write(struct.pack("iiiiiiii", L, vocab_valid, cfg.hidden_size, E, cfg.time_step_rank, cfg.state_size,
                            cfg.conv_kernel, 0))
        f.write(b"\0" * (256 - f.tell()))

        def w(t):
            f.write(t.contiguous().view(-1).numpy().astype("<f4").tobytes())

        w(sd["backbone.embeddings.weight"])
        for kind in ("in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A",
                     "D", "out_proj.weight"):
            for l in range(L):
                p = f"backbone.layers.{l}.mixer."
                w(-torch.exp(sd[p + "A_log"]) if kind == "A" else sd[p + kind])
        for l in range(L):
            w(sd[f"backbone.layers.{l}.norm.weight"])
        w(sd["backbone.norm_f.weight"])
        w(sd["lm_head.weight"])
    sd64 = f64(sd)
    for l in range(L):
        p = f"backbone.layers.{l}.mixer."
        sd64[p + "A"] = (-torch.exp(sd[p + "A_log"])).to(torch.float64)   # as stored: f32 -exp(A_log)
        del sd64[p + "A_log"]
    c = mamba1_cfg_dict(cfg)
    write_reference(d, lambda ids: mamba1_forward(sd64, c, ids), vocab_valid, T, seed,
                    f"mamba.c export.py layout, f32, untied, vocab {vocab_valid} (embedding rows rounded up to {V})")


def tokenizer_metadata(w: gguf.GGUFWriter, vocab_rows: int):
    """As convert_hf_to_gguf.py's _set_vocab_gpt2: tokens by id, [PAD{i}] for ids without one (UNUSED),
    added tokens CONTROL when special, merges as 'a b' strings."""
    tj = json.loads(TOKENIZER.read_text())
    vocab = tj["model"]["vocab"]
    added = {a["id"]: a for a in tj["added_tokens"]}
    rev = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(vocab_rows):
        if i in added:
            tokens.append(added[i]["content"])
            types.append(gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED)
        elif i in rev:
            tokens.append(rev[i])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    return max(i for i, t in enumerate(types) if t != gguf.TokenType.UNUSED) + 1


def q8_round_trip(a: np.ndarray) -> np.ndarray:
    return gguf.quants.dequantize(gguf.quants.quantize(a, QT.Q8_0), QT.Q8_0)


def build_gguf_mamba1(seed, T):
    d = OUT / "gguf_mamba1"
    fresh(d)
    V = 1008
    cfg = MambaConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, state_size=4, expand=2, conv_kernel=4,
                      time_step_rank=2, tie_word_embeddings=True, use_conv_bias=True, use_bias=False, layer_norm_epsilon=1e-5)
    torch.manual_seed(seed)
    model = MambaForCausalLM(cfg)
    randomise(model, torch.Generator().manual_seed(seed))
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w = gguf.GGUFWriter(d / "model.gguf", "mamba")
    w.add_name("tiny mamba1 fixture")
    w.add_context_length(2 ** 20)
    w.add_embedding_length(32)
    w.add_feed_forward_length(0)
    w.add_head_count(0)
    w.add_block_count(2)
    w.add_ssm_conv_kernel(4)
    w.add_ssm_inner_size(64)
    w.add_ssm_state_size(4)
    w.add_ssm_time_step_rank(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_ssm_dt_b_c_rms(False)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    n_valid = tokenizer_metadata(w, V)
    stored = {}

    def put(name, hf_name, a, q8):
        a = np.ascontiguousarray(a, dtype=np.float32)
        if q8:
            w.add_tensor(name, gguf.quants.quantize(a, QT.Q8_0), raw_dtype=QT.Q8_0)
            stored[hf_name] = q8_round_trip(a).reshape(a.shape)
        else:
            w.add_tensor(name, a)
            stored[hf_name] = a

    put("token_embd.weight", "backbone.embeddings.weight", sd["backbone.embeddings.weight"], True)
    for l in range(2):
        p, b = f"backbone.layers.{l}.", f"blk.{l}."
        put(b + "attn_norm.weight", p + "norm.weight", sd[p + "norm.weight"], False)
        put(b + "ssm_in.weight", p + "mixer.in_proj.weight", sd[p + "mixer.in_proj.weight"], True)
        conv = sd[p + "mixer.conv1d.weight"]
        put(b + "ssm_conv1d.weight", p + "mixer.conv1d.weight", conv.squeeze(), False)
        stored[p + "mixer.conv1d.weight"] = conv
        put(b + "ssm_conv1d.bias", p + "mixer.conv1d.bias", sd[p + "mixer.conv1d.bias"], False)
        put(b + "ssm_x.weight", p + "mixer.x_proj.weight", sd[p + "mixer.x_proj.weight"], True)
        put(b + "ssm_dt.weight", p + "mixer.dt_proj.weight", sd[p + "mixer.dt_proj.weight"], False)
        put(b + "ssm_dt.bias", p + "mixer.dt_proj.bias", sd[p + "mixer.dt_proj.bias"], False)
        put(b + "ssm_a", p + "mixer.A", -np.exp(sd[p + "mixer.A_log"]), False)
        put(b + "ssm_d", p + "mixer.D", sd[p + "mixer.D"], False)
        put(b + "ssm_out.weight", p + "mixer.out_proj.weight", sd[p + "mixer.out_proj.weight"], True)
    put("output_norm.weight", "backbone.norm_f.weight", sd["backbone.norm_f.weight"], False)
    # tied: the converter omits output.weight when it equals token_embd.weight
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    sd64 = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in stored.items()}
    c = mamba1_cfg_dict(cfg)
    write_reference(d, lambda ids: mamba1_forward(sd64, c, ids), n_valid, T, seed,
                    "GGUF 'mamba' in convert_hf_to_gguf.py's layout: Q8_0 matrices (the reference uses the dequantised "
                    "values), F32 vectors, A = -exp(A_log), tied (no output.weight), GPT-2-style tokenizer metadata",
                    {"tokenizer_vocab": n_valid}, n_new=6)


def build_gguf_mamba2(seed, T):
    d = OUT / "gguf_mamba2"
    fresh(d)
    V, G, H, P, N, D = 1008, 2, 8, 8, 8, 32
    E = H * P
    cfg = Mamba2Config(vocab_size=V, hidden_size=D, num_hidden_layers=2, expand=2, num_heads=H, head_dim=P, n_groups=G,
                       state_size=N, chunk_size=8, conv_kernel=4, tie_word_embeddings=False, use_conv_bias=True, use_bias=False,
                       layer_norm_epsilon=1e-5)
    torch.manual_seed(seed)
    model = Mamba2ForCausalLM(cfg)
    randomise(model, torch.Generator().manual_seed(seed))
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    w = gguf.GGUFWriter(d / "model.gguf", "mamba2")
    w.add_context_length(2 ** 20)
    w.add_embedding_length(D)
    w.add_feed_forward_length(0)
    w.add_head_count(0)
    w.add_block_count(2)
    w.add_ssm_conv_kernel(4)
    w.add_ssm_inner_size(E)
    w.add_ssm_state_size(N)
    w.add_ssm_time_step_rank(H)
    w.add_ssm_group_count(G)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    n_valid = tokenizer_metadata(w, V)
    stored = {}

    def put(name, hf_name, t, kind, shape=None):
        """kind: f32 | f16 | bf16; shape: the GGUF shape (torch order) when it differs from HF's."""
        a = t.reshape(shape) if shape is not None else t
        if kind == "f16":
            a16 = a.to(torch.float16)
            w.add_tensor(name, a16.numpy())
            back = a16.to(torch.float64)
        elif kind == "bf16":
            ab = a.to(torch.bfloat16)
            raw = ab.view(torch.int16).numpy().view(np.uint16)
            w.add_tensor(name, raw, raw_dtype=QT.BF16)
            back = ab.to(torch.float64)
        else:
            w.add_tensor(name, a.numpy().astype(np.float32))
            back = a.to(torch.float64)
        stored[hf_name] = back.reshape(t.shape)

    put("token_embd.weight", "backbone.embeddings.weight", sd["backbone.embeddings.weight"], "bf16")
    for l in range(2):
        p, b = f"backbone.layers.{l}.", f"blk.{l}."
        put(b + "attn_norm.weight", p + "norm.weight", sd[p + "norm.weight"], "f32")
        put(b + "ssm_in.weight", p + "mixer.in_proj.weight", sd[p + "mixer.in_proj.weight"], "f16")
        put(b + "ssm_conv1d.weight", p + "mixer.conv1d.weight", sd[p + "mixer.conv1d.weight"], "f32",
            sd[p + "mixer.conv1d.weight"].squeeze().shape)
        put(b + "ssm_conv1d.bias", p + "mixer.conv1d.bias", sd[p + "mixer.conv1d.bias"], "f32")
        put(b + "ssm_dt.bias", p + "mixer.dt_bias", sd[p + "mixer.dt_bias"], "f32")
        put(b + "ssm_a", p + "mixer.A", -torch.exp(sd[p + "mixer.A_log"]), "f32", (H, 1))
        put(b + "ssm_d", p + "mixer.D", sd[p + "mixer.D"], "f32", (H, 1))
        put(b + "ssm_norm.weight", p + "mixer.norm.weight", sd[p + "mixer.norm.weight"], "f32", (G, E // G))
        put(b + "ssm_out.weight", p + "mixer.out_proj.weight", sd[p + "mixer.out_proj.weight"], "bf16")
    put("output_norm.weight", "backbone.norm_f.weight", sd["backbone.norm_f.weight"], "f32")
    put("output.weight", "lm_head.weight", sd["lm_head.weight"], "f16")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    c = dict(n_heads=H, head_dim=P, n_groups=G, d_state=N, eps=1e-5, n_layer=2, tied=False)
    write_reference(d, lambda ids: mamba2_forward(stored, c, ids), n_valid, T, seed,
                    "GGUF 'mamba2' in convert_hf_to_gguf.py's layout: BF16 embedding and out_proj, F16 in_proj and output, "
                    "F32 vectors; dt_bias as ssm_dt.bias, A and D as (H, 1), gated norm as (G, E/G); untied",
                    {"tokenizer_vocab": n_valid}, n_new=6)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, gguf {gguf.__version__ if hasattr(gguf, '__version__') else '?'}")
    vocab_valid, pad = 101, 8
    V = -(vocab_valid // -pad) * pad
    _, cfg, sd = build_mamba1_hf(
        "mamba1_hf", dict(vocab_size=V, hidden_size=32, num_hidden_layers=2, state_size=8, expand=2, conv_kernel=4,
                          time_step_rank="auto", tie_word_embeddings=False, use_conv_bias=True, use_bias=False),
        torch.float32, 2001, 21, "HF MambaForCausalLM, f32, untied, d_state 8, dt_rank auto (2), conv 4, T 21")
    build_mamba1_hf(
        "mamba1_hf_bias", dict(vocab_size=64, hidden_size=24, num_hidden_layers=3, state_size=4, expand=2, conv_kernel=3,
                               time_step_rank=3, tie_word_embeddings=True, use_conv_bias=True, use_bias=True,
                               layer_norm_epsilon=1e-6),
        torch.bfloat16, 2002, 13, "HF MambaForCausalLM, bf16, tied, in/out_proj biases, conv 3, dt_rank 3, eps 1e-6, T 13")
    build_mamba1_original(sd, cfg, vocab_valid, pad, 2001, 21)
    build_mamba2_original(2003, 19)
    build_mambac(2004, 17)
    build_gguf_mamba1(2005, 9)
    build_gguf_mamba2(2006, 10)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"total size {total} bytes")
    assert total < SIZE_LIMIT, total


if __name__ == "__main__":
    main()
