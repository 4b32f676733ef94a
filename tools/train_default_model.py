#!/usr/bin/env python3
"""Train Mamba Studio's embedded default model, `mamba2-shakespeare`, from the raw corpus.

    # what made the shipped model (one H100, ~5.5 min; the device `run` tool, .carry/ carried):
    python3 tools/train_default_model.py --corpus .carry/tinyshakespeare.txt --out /tmp/res --work /tmp/work \
        --hard-stop 430            # then copy /tmp/res/* in, or pass --install when running in the repo
    # smoke test on a CPU (tiny model, a few steps):
    python3 tools/train_default_model.py --device cpu --tiny --steps 26 --variants lr1e3 --out /tmp/smoke

Everything from the corpus to a finished HF-format folder happens here:

 1. Split tinyshakespeare by BYTES: the first int(0.9 * len) bytes train, the rest validate.  Nothing
    is ever trained on the validation bytes (the tokenizer included).  The validation loss is used
    for checkpoint selection (best-of-run early stopping) and to pick one of the `--variants`
    (a small regularisation sweep trained side by side on the GPU): that is model selection on the
    validation split, stated as such in the model card.
 2. Train a byte-level BPE (HF `tokenizers`) on the training split only, in the form of the GPT-NeoX
    tokenizer.json (NFC normalizer, ByteLevel pre-tokenizer add_prefix_space=false, BPE model,
    ByteLevel decoder), with `<|endoftext|>` as id 0.
 3. Train `transformers`' Mamba2ForCausalLM.  The parameters are those of the HF module; the
    training step calls a functional forward over them (`mamba2_forward` below, checked against HF's
    own forward before training starts) because it needs two things HF's forward lacks: the SSM and
    conv states carried between steps (truncated BPTT over B contiguous streams, so the model learns
    to run on past any training window -- `mamba-cli score` runs one state over the whole file), and
    dropout on the residual branches.  bf16 autocast for the projections, the scan in float32.
    The model overfits this 300k-token corpus within ~4 epochs on dropout alone, so the variants add
    data noise: input-token corruption and a seeded BPE-dropout-like re-segmentation of the training
    text (`split_tokens`).  The variants (VARIANTS, WORKER_PLAN) train in 4 processes sharing one GPU.
 4. Save with `save_pretrained` (bf16 by default), reload the SAVED folder with transformers in
    float32 and measure the validation loss exactly as `mamba-cli score` does: tokenize the whole
    validation text, one long forward, nll = sum_{t<n-1} -log p(ids[t+1] | ids[<=t]),
    bytes = len(text bytes) - len(decode([ids[0]]) bytes), nats/byte = nll / bytes.
 5. Samples with transformers, a float64 reference (logits on three prompts + greedy continuation)
    for tests/test_default_model.cpp, the model card README.md and training_metrics.json.

Deterministic given --seed (up to GPU atomics; deterministic algorithms are requested): every variant
trains a fixed number of steps (its `epochs`) in its own process, so `--variants NAME` alone reproduces
the shipped variant.  `--hard-stop` only exists to keep the run inside the device's time limit; a
variant it cuts short is marked `truncated` in training_metrics.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
MODEL_NAME = "mamba2-shakespeare"
EOT = "<|endoftext|>"

# ----------------------------------------------------------------------------------------------
# Hyper-parameters.  All variants share the tokenizer and the architecture; they differ in
# regularisation and in how many epochs the LR schedule spans.  On --device cuda they train side by
# side (the model is small enough that one process leaves the GPU mostly idle).
# ----------------------------------------------------------------------------------------------
ARCH = dict(hidden_size=384, num_hidden_layers=8, state_size=64, head_dim=64, expand=2, n_groups=1,
            conv_kernel=4, chunk_size=64)
TINY_ARCH = dict(hidden_size=64, num_hidden_layers=2, state_size=16, head_dim=16, expand=2, n_groups=1,
                 conv_kernel=4, chunk_size=64)
BASE = dict(batch=32, seq_len=256, lr=2e-3, min_lr_frac=0.1, warmup=100, wd=0.1, beta2=0.95, clip=1.0,
            p_reset=0.02, eval_every=25, dropout=0.25, emb_dropout=0.1, corrupt=0.0, split_p=0.0, n_segs=1)
# A first sweep (dropout 0.15..0.45, no other noise, lr 2e-3) overfitted after ~4 epochs whatever the
# dropout (best 1.553 nats/byte).  So the variants below add data noise -- input-token corruption and
# segmentation noise (`split_tokens`) -- and size their cosine schedules in epochs accordingly.
VARIANTS = {
    "base":    dict(epochs=8),
    "corrupt": dict(epochs=12, corrupt=0.1),
    "wd1":     dict(epochs=12, dropout=0.3, wd=1.0),
    "split1":  dict(epochs=20, split_p=0.1, n_segs=10),
    "split1c": dict(epochs=30, split_p=0.1, n_segs=10, corrupt=0.1),
    "split2c": dict(epochs=40, split_p=0.2, n_segs=12, corrupt=0.1, dropout=0.3),
    "small":   dict(epochs=20, split_p=0.1, n_segs=10, dropout=0.2, arch=dict(hidden_size=256)),
    "lr1e3":   dict(epochs=24, split_p=0.1, n_segs=10, corrupt=0.05, lr=1e-3),
}
# the variants each worker process trains, one after the other (balanced in steps; the short ones first,
# so that a --hard-stop can only cut the tail of a long schedule)
WORKER_PLAN = [["base", "split2c"], ["wd1", "split1c"], ["split1", "lr1e3"], ["corrupt", "small"]]
VOCAB = 4096           # including <|endoftext|> (id 0) and the 256 byte symbols; a multiple of 8
PROMPT_CANDIDATES = [
    "ROMEO:\nI dreamt a dream to-night.\n\nMERCUTIO:\nAnd so did I.\n",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\n",
    "KING RICHARD II:\nO, that I were as great as is my grief — naïve café, ’tis so!\n",
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n",
    "DUKE VINCENTIO:\nBe absolute for death; either death or life\nShall thereby be the sweeter.\n",
    "LADY MACBETH:\nOut, damned spot! out, I say!\n",
    "HAMLET:\nTo be, or not to be, that is the question:\n",
    "GLOUCESTER:\nNow is the winter of our discontent\nMade glorious summer by this sun of York;\n",
    "PROSPERO:\nWe are such stuff\nAs dreams are made on, and our little life\nIs rounded with a sleep.\n",
    "MENENIUS:\nI tell you, friends, most charitable care\nHave the patricians of you.\n",
    "KING LEAR:\nBlow, winds, and crack your cheeks! rage! blow!\n",
    "PORTIA:\nThe quality of mercy is not strain'd,\n",
]
REF_TOPK = 20
REF_GREEDY = 20
MIN_REF_GAP = 5e-4     # greedy top1-top2 logit gap wanted of a reference prompt (float32 engine vs float64)
SIZE_LIMIT = 24_000_000


def log(*a):
    print(*a, flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def fmt_t(s: float) -> str:
    return f"{int(s) // 60}:{int(s) % 60:02d}"


# ----------------------------------------------------------------------------------------------
# Corpus and tokenizer
# ----------------------------------------------------------------------------------------------
def split_corpus(path: Path):
    data = path.read_bytes()
    cut = int(0.9 * len(data))
    return data, cut, data[:cut], data[cut:]


def train_tokenizer(train_text: str, vocab: int):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=True)   # as GPT-NeoX's
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([train_text], trainer)
    d = json.loads(tok.to_str())
    d["decoder"]["add_prefix_space"] = False   # as GPT-NeoX's (the constructor ignores it; decoding is the same)
    tok = Tokenizer.from_str(json.dumps(d))
    assert tok.token_to_id(EOT) == 0, "<|endoftext|> must be id 0"
    assert tok.get_vocab_size() == vocab, tok.get_vocab_size()
    return tok


def nats_per_byte_denominator(tok, text_bytes: bytes, first_id: int) -> int:
    # as app/cli_run.cpp run_score: every byte after what the first token decodes to is predicted
    return len(text_bytes) - len(tok.decode([first_id]).encode("utf-8"))


# ----------------------------------------------------------------------------------------------
# Functional Mamba-2 forward over the parameters of an HF Mamba2ForCausalLM (n_groups == 1)
# ----------------------------------------------------------------------------------------------
def segsum(x):
    """HF's stable segment sum: out[..., i, j] = sum_{k=j+1..i} x[..., k] for j <= i, else -inf."""
    T = x.size(-1)
    x = x[..., None].expand(*x.size(), T)
    mask = torch.tril(torch.ones(T, T, device=x.device, dtype=torch.bool), diagonal=-1)
    x = x.masked_fill(~mask, 0)
    s = torch.cumsum(x, dim=-2)
    mask = torch.tril(torch.ones(T, T, device=x.device, dtype=torch.bool), diagonal=0)
    return s.masked_fill(~mask, -torch.inf)


def ssd_scan(x, dt, A, B, C, chunk, init_state=None):
    """Chunked SSD (Mamba-2), one group.  x (b,T,h,p), dt (b,T,h) after softplus, A (h,), B/C (b,T,n).
    Returns y (b,T,h,p) without the D term and the final state (b,h,p,n)."""
    b, T, h, p = x.shape
    n = B.shape[-1]
    pad = (-T) % chunk
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, pad))
    c = (T + pad) // chunk
    xdt = (x * dt[..., None]).view(b, c, chunk, h, p)
    B = B.view(b, c, chunk, n)
    C = C.view(b, c, chunk, n)
    dA = (dt * A).view(b, c, chunk, h).permute(0, 3, 1, 2)          # b h c l
    Acs = torch.cumsum(dA, dim=-1)
    L = torch.exp(segsum(dA))                                         # b h c l s
    CB = torch.einsum("bcln,bcsn->bcls", C, B)
    Y_diag = torch.einsum("bhcls,bcshp->bclhp", CB[:, None] * L, xdt)
    decay_states = torch.exp(Acs[..., -1:] - Acs)                     # b h c l
    states = torch.einsum("bcln,bhcl,bclhp->bchpn", B, decay_states, xdt)
    init = init_state if init_state is not None else torch.zeros(b, h, p, n, device=x.device, dtype=x.dtype)
    states = torch.cat([init[:, None].to(states.dtype), states], dim=1)
    decay_chunk = torch.exp(segsum(F.pad(Acs[..., -1], (1, 0))))     # b h (c+1) (c+1)
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final = new_states[:, :-1], new_states[:, -1]
    Y_off = torch.einsum("bcln,bchpn,bhcl->bclhp", C, states, torch.exp(Acs))
    y = (Y_diag + Y_off).reshape(b, c * chunk, h, p)[:, :T]
    return y, final


def rmsnorm(x, w, eps, fdt=torch.float32):
    x = x.to(fdt)
    return w.to(fdt) * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def mamba2_forward(model, ids, states=None, dropout=0.0, emb_dropout=0.0, return_states=False,
                   compute_dtype=None, fdt=torch.float32):
    """ids (b,T) -> logits (b,T,V) float32.  states: list per layer of (conv (b,C,K-1), ssm (b,h,p,n)).
    Mirrors HF Mamba2ForCausalLM (residual_in_fp32, gated RMSNorm with norm_before_gate=False).
    compute_dtype: autocast dtype for the three projections (None: off).  fdt: dtype of everything else
    (float32; float64 for the independent check of the float64 reference)."""
    cfg = model.config
    bb = model.backbone
    H, I = cfg.hidden_size, cfg.expand * cfg.hidden_size
    nh, hp, N, K = cfg.num_heads, cfg.head_dim, cfg.state_size, cfg.conv_kernel
    eps = cfg.layer_norm_epsilon
    lo, hi = cfg.time_step_limit
    b, T = ids.shape
    sdt = compute_dtype or torch.float32
    x = F.embedding(ids, bb.embeddings.weight).to(fdt)
    if emb_dropout > 0:
        x = F.dropout(x, emb_dropout, True)
    new_states = []
    for li, layer in enumerate(bb.layers):
        mx = layer.mixer
        h = rmsnorm(x, layer.norm.weight, eps, fdt)
        with torch.autocast(device_type=ids.device.type, dtype=sdt, enabled=compute_dtype is not None):
            zxbcdt = F.linear(h, mx.in_proj.weight, mx.in_proj.bias)
        zxbcdt = zxbcdt.to(fdt)
        z, xBC, dtr = zxbcdt.split([I, I + 2 * N, nh], dim=-1)
        xBC = xBC.transpose(1, 2)                                     # b C T
        if states is not None and states[li] is not None:
            cs = states[li][0]
        else:
            cs = torch.zeros(b, xBC.shape[1], K - 1, device=xBC.device, dtype=xBC.dtype)
        xcat = torch.cat([cs.to(xBC.dtype), xBC], dim=-1)
        new_cs = xcat[:, :, -(K - 1):]
        conv = F.conv1d(xcat, mx.conv1d.weight.to(fdt), None if mx.conv1d.bias is None else mx.conv1d.bias.to(fdt),
                        groups=xBC.shape[1])
        conv = F.silu(conv).transpose(1, 2)                           # b T C
        xs, Bm, Cm = conv.split([I, N, N], dim=-1)
        dt = F.softplus(dtr + mx.dt_bias.to(fdt))
        if lo > 0 or hi != float("inf"):
            dt = dt.clamp(min=lo, max=hi)
        A = -torch.exp(mx.A_log.to(fdt))
        ss = states[li][1] if (states is not None and states[li] is not None) else None
        y, fin = ssd_scan(xs.view(b, T, nh, hp), dt, A, Bm, Cm, cfg.chunk_size, ss)
        y = y + mx.D.to(fdt)[:, None] * xs.view(b, T, nh, hp)
        y = y.reshape(b, T, I) * F.silu(z)
        y = mx.norm.weight.to(fdt) * (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + mx.norm.variance_epsilon))
        with torch.autocast(device_type=ids.device.type, dtype=sdt, enabled=compute_dtype is not None):
            out = F.linear(y, mx.out_proj.weight, mx.out_proj.bias)
        out = out.to(fdt)
        if dropout > 0:
            out = F.dropout(out, dropout, True)
        x = x + out
        new_states.append((new_cs, fin))
    x = rmsnorm(x, bb.norm_f.weight, cfg.layer_norm_epsilon, fdt)
    with torch.autocast(device_type=ids.device.type, dtype=sdt, enabled=compute_dtype is not None):
        logits = F.linear(x, model.lm_head.weight)
    logits = logits.to(fdt)
    return (logits, new_states) if return_states else logits


@torch.no_grad()
def stream_nll(model, ids: torch.Tensor, window: int = 8192) -> float:
    """Sum of -log p(ids[t+1] | ids[<=t]) for t = 0..n-2, one state carried through the whole text."""
    n = ids.numel()
    states, nll = None, 0.0
    for s in range(0, n - 1, window):
        e = min(s + window, n - 1)
        logits, states = mamba2_forward(model, ids[None, s:e], states, return_states=True)
        lp = torch.log_softmax(logits[0].double(), -1)
        nll -= lp.gather(1, ids[s + 1:e + 1, None]).sum().item()
    return nll


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------
def make_config(arch: dict, vocab: int):
    from transformers import Mamba2Config
    H = arch["hidden_size"]
    nh = arch["expand"] * H // arch["head_dim"]
    cfg = Mamba2Config(vocab_size=vocab, num_heads=nh, tie_word_embeddings=True, use_bias=False, use_conv_bias=True,
                       residual_in_fp32=True, layer_norm_epsilon=1e-5, rescale_prenorm_residual=False,
                       initializer_range=0.02, bos_token_id=0, eos_token_id=0, pad_token_id=0, **arch)
    assert cfg.num_heads * cfg.head_dim == cfg.expand * cfg.hidden_size
    return cfg


def build_model(cfg, seed: int):
    from transformers import Mamba2ForCausalLM
    torch.manual_seed(seed)
    m = Mamba2ForCausalLM(cfg)
    assert m.lm_head.weight.data_ptr() == m.backbone.embeddings.weight.data_ptr(), "embeddings must be tied"
    # GPT-2-style 1/sqrt(n_layer) scaling of out_proj, done here rather than through the config's
    # rescale_prenorm_residual: transformers 5.x applies that in-place division again every time
    # from_pretrained loads the checkpoint (its _init_weights runs on loaded weights), which would
    # silently change the model for every transformers user of the saved folder.
    with torch.no_grad():
        for layer in m.backbone.layers:
            layer.mixer.out_proj.weight /= math.sqrt(cfg.num_hidden_layers)
    return m


def check_loaded_equals_file(model, folder: Path):
    """The model transformers loaded must hold exactly the saved tensors (upcast)."""
    from safetensors.torch import load_file
    sd = load_file(str(folder / "model.safetensors"))
    msd = model.state_dict()
    bad = [k for k, v in sd.items() if not torch.equal(v.to(msd[k].dtype).cpu(), msd[k].cpu())]
    assert not bad, f"transformers changed these tensors while loading {folder}: {bad}"


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())   # tied weights counted once


@torch.no_grad()
def check_functional_matches_hf(model, device):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, model.config.vocab_size, (2, 150), generator=g).to(device)
    model.eval()
    ref = model(ids, use_cache=False).logits.float()
    ours = mamba2_forward(model, ids)
    r = ((ours - ref).norm() / ref.norm()).item()
    # carried state: two halves == whole
    l1, st = mamba2_forward(model, ids[:, :77], return_states=True)
    l2 = mamba2_forward(model, ids[:, 77:], st)
    r2 = ((torch.cat([l1, l2], 1) - ours).norm() / ours.norm()).item()
    assert r < 1e-4 and r2 < 1e-4, (r, r2)
    return r, r2


# ----------------------------------------------------------------------------------------------
# Training (run in worker processes, each training its share of the variants one after the other)
# ----------------------------------------------------------------------------------------------
def merge_parents(tokenizer_json: Path, vocab: int):
    """For each token made by a BPE merge a+b: the ids of a and b (-1 for the byte symbols/special)."""
    d = json.loads(tokenizer_json.read_text())
    v = d["model"]["vocab"]
    left = torch.full((vocab,), -1, dtype=torch.long)
    right = torch.full((vocab,), -1, dtype=torch.long)
    for m in d["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        t = v[a + b]
        left[t], right[t] = v[a], v[b]
    return left, right


def split_tokens(ids: torch.Tensor, left, right, p: float, gen: torch.Generator, rounds: int = 2):
    """Segmentation noise akin to BPE-dropout, but seeded: each token made by a merge a+b is replaced
    by the pair (a, b) with probability p (applied `rounds` times, so deeper splits have prob p^2).
    The text is unchanged; only its segmentation varies."""
    for _ in range(rounds):
        can = left[ids] >= 0
        hit = (torch.rand(ids.numel(), generator=gen) < p) & can
        out = torch.empty(ids.numel() + int(hit.sum()), dtype=ids.dtype)
        pos = torch.arange(ids.numel()) + torch.cumsum(hit.long(), 0) - hit.long()
        out[pos] = torch.where(hit, left[ids.clamp(min=0)], ids)
        out[pos[hit] + 1] = right[ids[hit]]
        ids = out
    return ids


def train_variant(args, name: str, hp: dict, work: Path, deadline: float):
    device = torch.device(args.device)
    tag = f"[{name}]"
    tokd = torch.load(work / "tokens.pt")
    canon = tokd["train"]
    val_ids = tokd["val"].to(device)
    val_bytes = tokd["val_bytes"]
    Ncanon = canon.numel()
    V = tokd["vocab"]
    arch = dict(TINY_ARCH if args.tiny else ARCH, **hp.get("arch", {}))
    cfg = make_config(arch, V)
    model = build_model(cfg, args.seed).to(device)
    r, r2 = check_functional_matches_hf(model, device)
    gen = torch.Generator().manual_seed(args.seed + 1)
    # training stream: the canonical segmentation, plus re-segmented copies when split_p > 0
    if hp.get("split_p", 0) > 0:
        left, right = merge_parents(work / "tokenizer.json", V)
        segs = [canon] + [split_tokens(canon, left, right, hp["split_p"], gen) for _ in range(hp["n_segs"] - 1)]
        train_ids = torch.cat(segs)
    else:
        train_ids = canon
    train_ids = train_ids.to(device)
    Ntr = train_ids.numel()
    log(f"{tag} params {n_params(model):,}; functional forward vs HF forward rel {r:.1e}, split-state rel {r2:.1e}; "
        f"training stream {Ntr:,} tokens ({Ntr / Ncanon:.2f} x the canonical segmentation)")
    model.train()

    decay, no_decay = [], []
    for pn, p in model.named_parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["wd"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=hp["lr"], betas=(0.9, hp["beta2"]), eps=1e-8, fused=device.type == "cuda")
    B, T = hp["batch"], hp["seq_len"]
    steps_per_epoch = Ncanon / (B * T)          # an epoch = as many tokens as the canonical training text
    total = args.steps if args.steps > 0 else max(hp["warmup"] + 10, int(round(hp["epochs"] * steps_per_epoch)))

    def lr_at(step):
        if step < hp["warmup"]:
            return hp["lr"] * (step + 1) / hp["warmup"]
        prog = min(1.0, (step - hp["warmup"]) / max(1, total - hp["warmup"]))
        return hp["lr"] * (hp["min_lr_frac"] + (1 - hp["min_lr_frac"]) * 0.5 * (1 + math.cos(math.pi * prog)))

    pos = torch.randint(0, Ntr - T - 1, (B,), generator=gen)
    states = None
    arangeT = torch.arange(T + 1)
    autocast_dt = torch.bfloat16 if device.type == "cuda" else None
    best = dict(npb=float("inf"), step=-1, state=None)
    history = []
    t0 = time.time()
    ema_loss = None
    step = 0
    tokens_seen = 0
    truncated = False

    def evaluate(step):
        model.eval()
        nll = stream_nll(model, val_ids)
        model.train()
        npb = nll / val_bytes
        if npb < best["npb"]:
            best.update(npb=npb, step=step, state={k: v.detach().clone() for k, v in model.state_dict().items()})
        return npb

    log(f"{tag} {total} steps ({total / steps_per_epoch:.1f} epochs), hp {json.dumps(hp, sort_keys=True)}")
    while step < total:
        # --- batch: B contiguous streams, states carried; a stream restarts (zero state, random place)
        #     with probability p_reset or when it would run off the end of the training stream.
        reset = (torch.rand(B, generator=gen) < hp["p_reset"]) | (pos + T + 1 > Ntr)
        if step == 0:
            reset[:] = True
        newpos = torch.randint(0, Ntr - T - 1, (B,), generator=gen)
        pos = torch.where(reset, newpos, pos)
        idx = (pos[:, None] + arangeT[None]).to(device)
        chunk = train_ids[idx]
        inp, tgt = chunk[:, :-1], chunk[:, 1:]
        if hp.get("corrupt", 0) > 0:            # input-token noise (targets untouched)
            hit = (torch.rand(B, T, generator=gen) < hp["corrupt"]).to(device)
            rnd = torch.randint(1, V, (B, T), generator=gen).to(device)
            inp = torch.where(hit, rnd, inp)
        if states is not None:
            keep = (~reset).to(device)
            states = [(c * keep[:, None, None], s * keep[:, None, None, None]) for c, s in states]
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits, new_states = mamba2_forward(model, inp, states, hp["dropout"], hp["emb_dropout"], True, autocast_dt)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), hp["clip"])
        opt.step()
        states = [(c.detach(), s.detach()) for c, s in new_states]
        pos = pos + T
        tokens_seen += B * T
        step += 1
        lv = loss.item()
        ema_loss = lv if ema_loss is None else 0.95 * ema_loss + 0.05 * lv
        if step % hp["eval_every"] == 0 or step == total:
            npb = evaluate(step)
            el = time.time() - t0
            history.append(dict(step=step, epoch=round(tokens_seen / Ncanon, 2), train_loss_tok=round(ema_loss, 4),
                                val_npb=round(npb, 5), lr=lr_at(step - 1), elapsed=round(el, 1)))
            if step % (hp["eval_every"] * 4) == 0 or step == total or npb <= best["npb"]:
                log(f"{tag} step {step:5d}/{total} ep {tokens_seen / Ncanon:6.2f} | train {ema_loss:.4f} nats/tok | "
                    f"val {npb:.4f} nats/B (best {best['npb']:.4f} @ {best['step']}) | lr {lr_at(step - 1):.2e} "
                    f"gn {gn:.2f} | {fmt_t(el)} ({el / step * 1000:.0f} ms/step)")
        if deadline and time.time() > deadline and step < total:
            log(f"{tag} hard stop at step {step}/{total} ({time.time() - t0:.0f} s): this variant is truncated")
            if step % hp["eval_every"]:
                evaluate(step)
            truncated = True
            break
    el = time.time() - t0
    torch.save(dict(name=name, hp=hp, arch=arch, vocab=V, truncated=truncated,
                    state={k: v.detach().cpu() for k, v in best["state"].items()}, best_npb=best["npb"],
                    best_step=best["step"], steps=step, total=total, epochs=tokens_seen / Ncanon, train_seconds=el,
                    history=history, params=n_params(model)), work / f"variant_{name}.pt")
    log(f"{tag} done: {step} steps in {el:.0f} s, best val {best['npb']:.4f} nats/B at step {best['step']}")


# ----------------------------------------------------------------------------------------------
# Final stage: save, reload with transformers, measure, sample, reference, card
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def hf_stream_nll(model, ids: torch.Tensor) -> float:
    """transformers, one forward of the whole text (use_cache=False), float32 -> float64 log-softmax."""
    logits = model(ids[None, :-1], use_cache=False).logits[0]
    lp = torch.log_softmax(logits.double(), -1)
    return -lp.gather(1, ids[1:, None]).sum().item()


@torch.no_grad()
def sample(model, tok, prompt: str, n: int, temperature: float, seed: int, device) -> str:
    """Token-by-token with transformers' forward (full re-forward each step: simple and exact)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    ids = tok.encode(prompt).ids
    for _ in range(n):
        logits = model(torch.tensor([ids], device=device), use_cache=False).logits[0, -1].double().cpu()
        if temperature == 0:
            nxt = int(logits.argmax())
        else:
            p = torch.softmax(logits / temperature, -1)
            nxt = int(torch.multinomial(p, 1, generator=g))
        ids.append(nxt)
    return tok.decode(ids)


def load_ref_module():
    """float64-faithful transformers Mamba2 (tools/make_fixtures.py's source-patched copy); stock as fallback."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import make_fixtures
        return make_fixtures.REF, "transformers Mamba2ForCausalLM, source-patched to float64 throughout " \
                                  "(tools/make_fixtures.py load_patched_mamba2)"
    except Exception as e:  # pragma: no cover
        log(f"make_fixtures import failed ({e!r}); using stock transformers in float64 (~1e-7 relative)")
        from transformers.models.mamba2 import modeling_mamba2
        return modeling_mamba2, "stock transformers Mamba2ForCausalLM .to(float64) (some float32 casts inside)"


@torch.no_grad()
def make_reference(model_dir: Path, tok, threads: int):
    torch.set_num_threads(threads)
    mod, how = load_ref_module()
    m = mod.Mamba2ForCausalLM.from_pretrained(model_dir, dtype=torch.float64)
    m.eval()
    check_loaded_equals_file(m, model_dir)
    prompts, tried = [], []
    for text in PROMPT_CANDIDATES:
        ids = tok.encode(text).ids
        if not 8 <= len(ids) <= 40:
            tried.append((text, f"{len(ids)} tokens"))
            continue
        logits = m(torch.tensor([ids]), use_cache=False).logits[0]
        seq, rows = list(ids), []
        for _ in range(REF_GREEDY):
            r = m(torch.tensor([seq]), use_cache=False).logits[0, -1]
            rows.append(r)
            seq.append(int(r.argmax()))
        rows = torch.stack(rows)
        s = rows.sort(-1, descending=True).values
        gap = (s[:, 0] - s[:, 1]).min().item()
        s0 = logits.sort(-1, descending=True).values
        if gap < MIN_REF_GAP:
            tried.append((text, f"greedy gap {gap:.1e}"))
        top = logits.topk(REF_TOPK, -1)
        prompts.append(dict(text=text, ids=ids, top_ids=top.indices.tolist(), top_logits=top.values.tolist(),
                            last_logits=logits[-1].tolist(), greedy_ids=seq[len(ids):],
                            greedy_text=tok.decode(seq[len(ids):]), min_greedy_gap=gap,
                            min_prompt_top2_gap=(s0[:, 0] - s0[:, 1]).min().item()))
        if sum(p["min_greedy_gap"] >= MIN_REF_GAP for p in prompts) == 3:
            break
    # three prompts with a safe greedy margin, in candidate order; if there are not three, the largest margins
    ok = [p for p in prompts if p["min_greedy_gap"] >= MIN_REF_GAP]
    if len(ok) < 3:
        log(f"WARNING: only {len(ok)} candidate prompts have a greedy gap >= {MIN_REF_GAP}; taking the largest gaps")
        keep = sorted(prompts, key=lambda p: -p["min_greedy_gap"])[:3]
        ok = [p for p in prompts if any(p is k for k in keep)]
    prompts = ok[:3]
    assert len(prompts) == 3, f"not enough reference prompts: {tried}"
    # Cross-check against the functional forward in float64 (independent of transformers' code).
    worst = 0.0
    for p in prompts:
        ours = functional_f64(m, p["ids"])
        ref = torch.tensor(p["last_logits"], dtype=torch.float64)
        worst = max(worst, ((ours[-1] - ref).norm() / ref.norm()).item())
        for t in range(len(p["ids"])):
            ti = torch.tensor(p["top_ids"][t])
            rv = torch.tensor(p["top_logits"][t], dtype=torch.float64)
            worst = max(worst, ((ours[t][ti] - rv).norm() / rv.norm()).item())
    return prompts, how, worst, tried


def functional_f64(m, ids):
    return mamba2_forward(m, torch.tensor([ids]), fdt=torch.float64)[0]


def finalize(args, work: Path, out: Path, tok, meta: dict):
    from transformers import Mamba2ForCausalLM
    import transformers
    from safetensors import safe_open
    device = torch.device(args.device)
    results = []
    for f in sorted(work.glob("variant_*.pt")):
        results.append(torch.load(f, map_location="cpu", weights_only=False))
    assert results, "no variant finished"
    results.sort(key=lambda r: r["best_npb"])
    log("\n=== variants (val nats/byte of the best checkpoint, float32 weights) ===")
    for r in results:
        log(f"  {r['name']}: {r['best_npb']:.4f} at step {r['best_step']}/{r['total']} "
            f"({r['epochs']:.1f} epochs, {r['train_seconds']:.0f} s)  hp={json.dumps(r['hp'], sort_keys=True)}")
    win = results[0]
    cfg = make_config(win["arch"], win["vocab"])
    model = build_model(cfg, args.seed)
    missing, unexpected = model.load_state_dict(win["state"], strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    save_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.save_dtype]
    mdir = out / MODEL_NAME
    mdir.mkdir(parents=True, exist_ok=True)
    model.to(save_dtype).save_pretrained(mdir)
    for extra in ("generation_config.json",):
        (mdir / extra).unlink(missing_ok=True)
    with safe_open(mdir / "model.safetensors", "pt") as f:
        keys = list(f.keys())
        dts = {f.get_slice(k).get_dtype() for k in keys}
    assert "lm_head.weight" not in keys and len(dts) == 1, (dts, keys[:3])

    # ---- reload the saved folder with transformers, float32, and measure --------------------------
    hf = Mamba2ForCausalLM.from_pretrained(mdir, dtype=torch.float32).to(device).eval()
    check_loaded_equals_file(hf, mdir)
    val_ids = meta["val_ids"].to(device)
    train_ids = meta["train_ids"].to(device)
    t = time.time()
    val_nll = hf_stream_nll(hf, val_ids)
    val_npb = val_nll / meta["val_bytes"]
    val_nll_f = stream_nll(hf, val_ids)
    train_nll = stream_nll(hf, train_ids)
    train_npb = train_nll / meta["train_bytes"]
    log(f"\nsaved weights ({args.save_dtype}) reloaded with transformers in float32:")
    log(f"  validation: {val_npb:.5f} nats/byte  (nll {val_nll:.3f} over {meta['val_bytes']} bytes, "
        f"{val_ids.numel()} tokens, one forward; {val_nll / (val_ids.numel() - 1):.4f} nats/token)")
    log(f"  same with the functional forward, state carried in 8192-token windows: "
        f"{val_nll_f / meta['val_bytes']:.5f} (rel diff {abs(val_nll_f - val_nll) / val_nll:.1e})")
    log(f"  training split: {train_npb:.5f} nats/byte ({train_ids.numel()} tokens)   [{time.time() - t:.1f} s]")

    # ---- samples --------------------------------------------------------------------------------
    samples = []
    for prompt, temp, seed in (("ROMEO:\n", 0.0, 0), ("JULIET:\n", 0.8, 1), ("First Citizen:\n", 1.0, 2)):
        txt = sample(hf, tok, prompt, args.sample_tokens, temp, seed, device)
        samples.append(dict(prompt=prompt, temperature=temp, seed=seed, new_tokens=args.sample_tokens, text=txt))
        log(f"\n--- sample: prompt {prompt!r}, {'greedy' if temp == 0 else f'temperature {temp}, seed {seed}'} ---\n{txt}")

    # ---- float64 reference -----------------------------------------------------------------------
    t = time.time()
    prompts, how, xcheck, tried = make_reference(mdir, tok, args.ref_threads)
    log(f"\nfloat64 reference: {len(prompts)} prompts ({[len(p['ids']) for p in prompts]} tokens, greedy gaps "
        f"{[round(p['min_greedy_gap'], 4) for p in prompts]}), "
        f"cross-check vs functional float64 forward rel {xcheck:.1e}, min greedy gap "
        f"{min(p['min_greedy_gap'] for p in prompts):.3f}  [{time.time() - t:.1f} s]")
    ref = dict(model=MODEL_NAME, produced_by="tools/train_default_model.py", computed_with=how,
               transformers=transformers.__version__, torch=torch.__version__,
               weights_sha256=sha256(mdir / "model.safetensors"), tokenizer_sha256=sha256(mdir / "tokenizer.json"),
               vocab_size=cfg.vocab_size, top_k=REF_TOPK, greedy_new_tokens=REF_GREEDY,
               note="logits in float64 from the saved (bf16-rounded) weights. top_ids/top_logits: the 20 largest "
                    "logits of every prompt position (descending); last_logits: all logits of the last position; "
                    "greedy_ids: argmax continuation (chunked re-forward each step, use_cache=False).",
               cross_check_rel=xcheck, skipped_candidates=tried, prompts=prompts)
    (out / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")

    # ---- metrics + card ---------------------------------------------------------------------------
    files = sorted(p.name for p in mdir.iterdir())
    metrics = dict(
        model=MODEL_NAME, params=n_params(model), weights_dtype=args.save_dtype,
        config={k: getattr(cfg, k) for k in ("vocab_size", "hidden_size", "num_hidden_layers", "state_size",
                                             "num_heads", "head_dim", "expand", "n_groups", "conv_kernel",
                                             "chunk_size", "tie_word_embeddings")},
        tokenizer=dict(type="byte-level BPE (HF tokenizers), trained on the training split", vocab_size=tok.get_vocab_size(),
                       eot_id=0, train_tokens=int(train_ids.numel()), val_tokens=int(val_ids.numel()),
                       val_bytes_per_token=round(meta["val_len"] / val_ids.numel(), 4)),
        corpus=dict(file="tinyshakespeare.txt", bytes=meta["n_bytes"], sha256=meta["corpus_sha"],
                    train_bytes=[0, meta["cut"]], val_bytes=[meta["cut"], meta["n_bytes"]],
                    val_sha256=meta["val_sha"]),
        val_nats_per_byte=round(val_npb, 6), val_nll=val_nll, val_bytes_scored=meta["val_bytes"],
        train_nats_per_byte=round(train_npb, 6), train_nll=train_nll, train_bytes_scored=meta["train_bytes"],
        val_measured_as="transformers Mamba2ForCausalLM, saved weights reloaded in float32, one forward over the whole "
                        "validation text; nll of ids[1:] given the prefix; bytes = len(text) - len(decode(ids[0])) "
                        "(= mamba-cli score)",
        selection="best-validation checkpoint of each variant (evaluated every "
                  f"{win['hp']['eval_every']} steps), then the best variant: model selection on the validation split",
        chosen_variant=win["name"], hyperparameters=win["hp"], seed=args.seed, worker_processes=meta.get("procs", 1),
        steps=win["total"], best_step=win["best_step"], epochs_trained=round(win["epochs"], 2),
        train_seconds=round(win["train_seconds"], 1), sweep_seconds=meta.get("sweep_seconds"), hardware=meta["hardware"],
        variants=[dict(name=r["name"], hp=r["hp"], best_val_npb_fp32=round(r["best_npb"], 6), best_step=r["best_step"],
                       steps=r["steps"], planned_steps=r["total"], truncated=r.get("truncated", False),
                       epochs=round(r["epochs"], 2), seconds=round(r["train_seconds"], 1))
                  for r in results],
        history=win["history"], samples=samples, software=dict(torch=torch.__version__,
                                                               transformers=transformers.__version__),
        reproduce=f"python3 tools/train_default_model.py --seed {args.seed} --variants {win['name']}"
                  + (f" --steps {win['steps']}" if win.get("truncated") else ""),
        files=files + ["training_metrics.json"])
    (mdir / "training_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    write_card(mdir, metrics, cfg)
    total = sum(p.stat().st_size for p in mdir.iterdir())
    log(f"\n{mdir}: {total:,} bytes ({', '.join(sorted(p.name for p in mdir.iterdir()))})")
    assert total <= SIZE_LIMIT, f"model folder {total} bytes > {SIZE_LIMIT}"
    log(f"\nFINAL  params {metrics['params']:,}  weights {args.save_dtype}  train {train_npb:.4f} nats/byte  "
        f"val {val_npb:.4f} nats/byte  (variant {win['name']}, best step {win['best_step']}/{win['total']})")


def write_card(mdir: Path, m: dict, cfg):
    c = m["config"]
    hp = m["hyperparameters"]
    L = []
    L.append(f"# {MODEL_NAME}\n")
    L.append("The embedded default model of Mamba Studio: a small Mamba-2 language model trained from scratch on "
             "Tiny Shakespeare, so that a freshly built app and `mamba-cli` produce real text and real hidden-state "
             "dynamics without downloading anything. It is an ordinary Hugging Face checkpoint "
             "(`transformers.Mamba2ForCausalLM`): `config.json`, `model.safetensors`, `tokenizer.json`.\n")
    L.append("Made by `tools/train_default_model.py` (corpus -> tokenizer -> training -> this folder), "
             f"reproducible with `{m['reproduce']}`.\n")
    L.append("## Model\n")
    L.append(f"- parameters: **{m['params']:,}** (embedding tied with the LM head)")
    L.append(f"- weights: **{'bfloat16' if m['weights_dtype'] == 'bf16' else 'float32'}** "
             f"({'trained in float32 master weights with bf16 autocast, rounded to bf16 when saved; all numbers below are measured on the rounded weights' if m['weights_dtype'] == 'bf16' else 'float32 as trained'})")
    L.append(f"- config: hidden_size {c['hidden_size']}, num_hidden_layers {c['num_hidden_layers']}, expand {c['expand']} "
             f"(d_inner {c['expand'] * c['hidden_size']}), num_heads {c['num_heads']} x head_dim {c['head_dim']}, "
             f"state_size {c['state_size']}, n_groups {c['n_groups']}, conv_kernel {c['conv_kernel']}, "
             f"chunk_size {c['chunk_size']}, vocab_size {c['vocab_size']}, tie_word_embeddings true, no biases "
             f"except the conv's, RMSNorm eps 1e-5, time_step_limit (0, inf). `rescale_prenorm_residual` is false on "
             f"purpose: the 1/sqrt(n_layer) out_proj scaling was applied once at initialisation by the script, and "
             f"with it set, transformers 5.x would divide the loaded out_proj weights again on every load")
    L.append(f"- state per sequence: {c['num_hidden_layers']} layers x ({c['num_heads']}x{c['head_dim']}x{c['state_size']} SSM "
             f"+ {c['conv_kernel'] - 1}x{c['expand'] * c['hidden_size'] + 2 * c['n_groups'] * c['state_size']} conv) floats\n")
    t = m["tokenizer"]
    L.append("## Tokenizer\n")
    L.append(f"Byte-level BPE trained with HF `tokenizers` on the training split only, **{t['vocab_size']} tokens** "
             f"(`<|endoftext|>` = id 0, the 256 byte symbols, {t['vocab_size'] - 257} merges), in the form of the "
             "GPT-NeoX tokenizer.json: NFC normalizer, ByteLevel pre-tokenizer (add_prefix_space=false, GPT-2 regex), "
             "BPE model, ByteLevel decoder. `bos`/`eos`/`pad` ids are 0 (`<|endoftext|>`; the corpus never contains it, "
             "so generation never stops on it by itself). "
             f"Why {t['vocab_size']}: on this 1 MB corpus 2048 tokens give only 2.56 bytes/token, 8192 give 3.19 but "
             "leave ~3,000 tokens seen fewer than 5 times in training (poorly learnt embeddings, more overfitting); "
             f"4096 gives {t['val_bytes_per_token']} bytes/token on the validation text with ~670 rare tokens, "
             "and its 1.6 M-parameter embedding keeps most of the budget for the layers. "
             f"Training split: {t['train_tokens']:,} tokens; validation: {t['val_tokens']:,} tokens.\n")
    L.append("## Data\n")
    co = m["corpus"]
    L.append(f"`tinyshakespeare.txt` ({co['bytes']:,} bytes, sha256 `{co['sha256'][:16]}…`). Training: bytes "
             f"[0, {co['train_bytes'][1]:,}) (the first 90 %); validation: bytes [{co['val_bytes'][0]:,}, "
             f"{co['val_bytes'][1]:,}) (the last 10 %). Neither the tokenizer nor the model was trained on the "
             f"validation bytes. The validation loss **was** used for model selection: the checkpoint with the best "
             f"validation loss of each run is kept, and the best of {len(m['variants'])} regularisation variants is shipped.\n")
    L.append("## Training\n")
    L.append(f"- hardware: {m['hardware']}; {m['train_seconds']:.0f} s of training for the shipped variant, which ran "
             f"alongside the others ({len(m['variants'])} variants in {m['worker_processes']} processes sharing one device)"
             + (f"; the whole sweep took {m['sweep_seconds']:.0f} s" if m.get("sweep_seconds") else ""))
    L.append(f"- steps: {m['steps']} ({m['epochs_trained']} epochs of the training tokens), batch {hp['batch']} x "
             f"{hp['seq_len']} tokens; best validation at step {m['best_step']}")
    L.append(f"- truncated BPTT: the {hp['batch']} batch rows are contiguous streams through the training text whose "
             f"SSM and conv states carry over from step to step (gradients stop at the step boundary); a stream "
             f"restarts at a random place with a zero state with probability {hp['p_reset']} per step, so the model "
             f"sees both fresh and long-running states (scoring runs one state over ~{t['val_tokens']:,} tokens)")
    L.append(f"- data noise: input-token corruption {hp['corrupt']} (an input token is replaced by a uniformly random "
             f"one; the target is kept); segmentation noise {hp['split_p']} (the training stream holds "
             f"{hp['n_segs']} segmentations of the training text: the canonical one and copies in which each merged "
             f"token is split back into its two merge parents with that probability, twice over, a seeded variant "
             f"of BPE-dropout; the text is the same, so this is augmentation, not extra data)")
    L.append(f"- AdamW (beta2 {hp['beta2']}, weight decay {hp['wd']} on matrices and embeddings only), "
             f"peak LR {hp['lr']}, {hp['warmup']} warm-up steps then cosine to {hp['min_lr_frac']} x peak, "
             f"gradient clip {hp['clip']}, dropout {hp['dropout']} on each mixer's output and {hp['emb_dropout']} on the "
             f"embeddings (training only), bf16 autocast for the projections, scan in float32, seed {m['seed']}")
    L.append("- variants (validation nats/byte of each run's best checkpoint, float32 weights; settings that differ "
             "from the shipped variant's in brackets):")
    for v in m["variants"]:
        diff = {k: x for k, x in v["hp"].items() if hp.get(k) != x}
        L.append(f"  - `{v['name']}`{' ' + json.dumps(diff, sort_keys=True) if diff else ''}: **{v['best_val_npb_fp32']:.4f}** "
                 f"at step {v['best_step']}/{v['steps']} ({v['epochs']} epochs, {v['seconds']:.0f} s)"
                 + (" (cut short by the time limit)" if v.get("truncated") else ""))
    L.append(f"- before this sweep, one with dropout 0.15 / 0.25 / 0.35 / 0.45 and no data noise overfitted after "
             f"~4 epochs whatever the dropout (best 1.553 nats/byte on the validation split); hence the data noise")
    L.append("")
    L.append("## Results\n")
    L.append("Measured on the saved weights reloaded with `transformers` in float32, exactly as "
             "`mamba-cli score --text-file F` computes it: the whole text is tokenized (no BOS/EOS), one state runs "
             "over all of it, nll = sum over t of -log p(ids[t+1] | ids[..t]), divided by the bytes after the first "
             "token.\n")
    L.append("| split | nats per byte | bits per byte |")
    L.append("| --- | --- | --- |")
    L.append(f"| training (first 90 %) | {m['train_nats_per_byte']:.4f} | {m['train_nats_per_byte'] / math.log(2):.4f} |")
    L.append(f"| validation (last 10 %) | **{m['val_nats_per_byte']:.4f}** | {m['val_nats_per_byte'] / math.log(2):.4f} |")
    L.append("")
    L.append("For scale: nanoGPT's 10.7 M-parameter character-level transformer reaches 1.47 nats/char on the same split.\n")
    L.append("## Samples\n")
    L.append("Generated at the end of training with `transformers` (token by token from the saved weights, float32).\n")
    for s in m["samples"]:
        kind = "greedy" if s["temperature"] == 0 else f"sampled, temperature {s['temperature']}, seed {s['seed']}"
        L.append(f"**Prompt `{s['prompt']!r}`, {kind}, {s['new_tokens']} new tokens:**\n")
        L.append("```text\n" + s["text"].rstrip("\n") + "\n```\n")
    L.append("## Limitations\n")
    L.append(f"A {m['params'] / 1e6:.1f} M-parameter model trained for minutes on one megabyte: it imitates the look of the plays (speaker "
             "names, verse lines, archaic words), not their sense. English only, Shakespeare only. Public-domain "
             "training text.\n")
    (mdir / "README.md").write_text("\n".join(L))


# ----------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_corpus = REPO / ".carry" / "tinyshakespeare.txt"
    if not default_corpus.exists():
        default_corpus = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
    ap.add_argument("--corpus", type=Path, default=default_corpus)
    ap.add_argument("--out", type=Path, default=REPO / "build" / "default_model")
    ap.add_argument("--work", type=Path, default=Path("/tmp/train_default_model_work"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--variants", default=None, help="comma list of VARIANTS keys (default: WORKER_PLAN, all of them)")
    ap.add_argument("--procs", type=int, default=4, help="worker processes for --variants")
    ap.add_argument("--steps", type=int, default=0, help="steps per variant (0: the variant's epochs)")
    ap.add_argument("--hard-stop", type=float, default=0.0,
                    help="seconds after which a worker truncates its current variant and skips the rest (0: never)")
    ap.add_argument("--save-dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--sample-tokens", type=int, default=200)
    ap.add_argument("--ref-threads", type=int, default=4)
    ap.add_argument("--write-val", type=Path, default=None, help="also write the validation bytes here")
    ap.add_argument("--tiny", action="store_true", help="tiny model for a CPU smoke test")
    ap.add_argument("--install", action="store_true",
                    help=f"also copy the results into the repo: resources/models/{MODEL_NAME}/ and "
                         "tests/fixtures/default_model/reference.json")
    ap.add_argument("--finalize-only", action="store_true",
                    help="skip training: finish from the variant_*.pt, meta.pt and tokenizer.json in --work")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    import transformers
    transformers.logging.set_verbosity_error()

    if args.worker:
        if args.device == "cuda":
            torch.set_num_threads(2)
        deadline = time.time() + args.hard_stop if args.hard_stop else 0.0
        for name in args.worker.split(","):
            if deadline and time.time() > deadline:
                log(f"[{name}] skipped: past the hard stop")
                continue
            train_variant(args, name, dict(BASE, **VARIANTS[name]), args.work, deadline)
        return

    T0 = time.time()
    if args.finalize_only:
        from tokenizers import Tokenizer
        meta = torch.load(args.work / "meta.pt", weights_only=False)
        tok = Tokenizer.from_file(str(args.work / "tokenizer.json"))
        mdir = args.out / MODEL_NAME
        if mdir.exists():
            shutil.rmtree(mdir)
        mdir.mkdir(parents=True)
        shutil.copy(args.work / "tokenizer.json", mdir / "tokenizer.json")
        log(f"finalizing from {args.work} on {args.device} (training hardware: {meta['hardware']})")
        finalize(args, args.work, args.out, tok, meta)
        if args.install:
            install(args.out)
        return
    if args.variants:
        names = args.variants.split(",")
        plan = [names[i::args.procs] for i in range(min(args.procs, len(names)))]
    else:
        plan = WORKER_PLAN
        names = [n for w in plan for n in w]
    for n in names:
        assert n in VARIANTS, n
    meta_procs = len(plan)
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    args.out.mkdir(parents=True, exist_ok=True)
    mdir = args.out / MODEL_NAME
    if mdir.exists():
        shutil.rmtree(mdir)
    mdir.mkdir(parents=True)
    if args.device == "cuda":
        p = torch.cuda.get_device_properties(0)
        hardware = f"1x {p.name} ({p.total_memory / 2**30:.0f} GiB), PyTorch {torch.__version__}, no mamba_ssm kernels"
    else:
        hardware = f"CPU ({os.cpu_count()} cores), PyTorch {torch.__version__}"
    log(f"train_default_model: torch {torch.__version__}, transformers {transformers.__version__}, {hardware}")

    # ---- corpus + tokenizer ---------------------------------------------------------------------
    data, cut, tr_b, va_b = split_corpus(args.corpus)
    log(f"corpus {args.corpus}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}…; "
        f"train [0,{cut:,}) val [{cut:,},{len(data):,})")
    (args.work / "val.txt").write_bytes(va_b)
    if args.write_val:
        args.write_val.parent.mkdir(parents=True, exist_ok=True)
        args.write_val.write_bytes(va_b)
    tr_text, va_text = tr_b.decode("utf-8"), va_b.decode("utf-8")
    t = time.time()
    tok = train_tokenizer(tr_text, VOCAB)
    tok.save(str(mdir / "tokenizer.json"))
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(mdir / "tokenizer.json"))          # what ships is what we use
    tr_ids = tok.encode(tr_text).ids
    va_ids = tok.encode(va_text).ids
    assert tok.decode(va_ids) == va_text and tok.decode(tr_ids) == tr_text, "tokenizer does not round-trip"
    tr_bytes = nats_per_byte_denominator(tok, tr_b, tr_ids[0])
    va_bytes = nats_per_byte_denominator(tok, va_b, va_ids[0])
    log(f"tokenizer: {tok.get_vocab_size()} tokens in {time.time() - t:.1f} s; train {len(tr_ids):,} tokens "
        f"({len(tr_b) / len(tr_ids):.3f} B/tok), val {len(va_ids):,} tokens ({len(va_b) / len(va_ids):.3f} B/tok); "
        f"scored bytes train {tr_bytes:,} val {va_bytes:,}")
    meta = dict(train_ids=torch.tensor(tr_ids), val_ids=torch.tensor(va_ids), train_bytes=tr_bytes,
                val_bytes=va_bytes, vocab=VOCAB, n_bytes=len(data), cut=cut, val_len=len(va_b),
                corpus_sha=hashlib.sha256(data).hexdigest(), val_sha=hashlib.sha256(va_b).hexdigest(),
                hardware=hardware, procs=meta_procs)
    torch.save(dict(train=meta["train_ids"], val=meta["val_ids"], train_bytes=tr_bytes, val_bytes=va_bytes,
                    vocab=VOCAB), args.work / "tokens.pt")
    torch.save(meta, args.work / "meta.pt")
    shutil.copy(mdir / "tokenizer.json", args.work / "tokenizer.json")

    # ---- train the variants side by side ----------------------------------------------------------
    log(f"training variants {plan} (one list per process) (setup took {time.time() - T0:.0f} s)")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = []
    for w in plan:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", ",".join(w), "--work", str(args.work),
               "--device", args.device, "--seed", str(args.seed), "--steps", str(args.steps),
               "--hard-stop", str(args.hard_stop)]
        if args.tiny:
            cmd.append("--tiny")
        procs.append((",".join(w), subprocess.Popen(cmd, env=env)))
    failed = []
    t_sweep = time.time()
    for n, p in procs:
        if p.wait() != 0:
            failed.append(n)
    meta["sweep_seconds"] = round(time.time() - t_sweep, 1)
    if failed:
        log(f"variants failed: {failed}")
    finish(args, tok, meta)
    log(f"total {time.time() - T0:.0f} s")


def install(out: Path):
    dst = REPO / "resources" / "models" / MODEL_NAME
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(out / MODEL_NAME, dst)
    (REPO / "tests" / "fixtures" / "default_model").mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "reference.json", REPO / "tests" / "fixtures" / "default_model" / "reference.json")
    log(f"installed into {dst} and tests/fixtures/default_model/reference.json")


def finish(args, tok, meta):
    try:
        finalize(args, args.work, args.out, tok, meta)
        if args.install:
            install(args.out)
    except BaseException:
        # Keep what the training produced so that `--finalize-only --work DIR` can finish elsewhere.
        rescue = args.out / "rescue"
        rescue.mkdir(parents=True, exist_ok=True)
        best = None
        for f in sorted(args.work.glob("variant_*.pt")):
            r = torch.load(f, map_location="cpu", weights_only=False)
            if best is None or r["best_npb"] < best["best_npb"]:
                best = r
        if best is not None:
            best["state"] = {k: v.to(torch.bfloat16) for k, v in best["state"].items()}
            torch.save(best, rescue / f"variant_{best['name']}.pt")
        for f in ("meta.pt", "tokens.pt", "tokenizer.json"):
            if (args.work / f).exists():
                shutil.copy(args.work / f, rescue / f)
        log(f"finalize failed; training results kept in {rescue} (finish with --finalize-only --work {rescue})")
        raise


if __name__ == "__main__":
    main()
