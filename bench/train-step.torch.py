"""PyTorch twin of factrl's learner training step, the yardstick for bench/train-step.ts.

Same model as models/dense.ts (pre-norm RMSNorm, RoPE, causal attention with an additive mask,
SiLU MLP, untied output), same batch (prompt + answer rows), output layer only on the positions
that predict answer tokens, GRPO clipped surrogate with token-mean aggregation, Adam.
Serves bench/train-step.ts over stdin/stdout so both sides run interleaved, under the same load:
reads "threads N" or "step" lines, answers each with one JSON line. Standalone:
  printf 'threads 1\nstep\nstep\nstep\n' | /usr/bin/python3 bench/train-step.torch.py
"""

import argparse
import json
import math
import sys
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--vocab", type=int, default=512)
p.add_argument("--d", type=int, default=128)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--dff", type=int, default=512)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--prompt", type=int, default=32)
p.add_argument("--answer", type=int, default=64)
args = p.parse_args()
torch.manual_seed(0)

V, d, H, F, L = args.vocab, args.d, args.heads, args.dff, args.layers
B, P, A = args.batch, args.prompt, args.answer
T, dh = P + A, d // args.heads


def param(*shape, std=0.02, ones=False):
    t = torch.ones(*shape) if ones else torch.randn(*shape) * std
    return torch.nn.Parameter(t)


emb = param(V, d)
layers = [
    dict(n1=param(d, ones=True), wq=param(d, d), wk=param(d, d), wv=param(d, d), wo=param(d, d),
         n2=param(d, ones=True), w1=param(d, F), w2=param(F, d))
    for _ in range(L)
]
final_norm, out_w = param(d, ones=True), param(d, V)
params = [emb, final_norm, out_w] + [w for layer in layers for w in layer.values()]

inv = 10000 ** (-torch.arange(0, dh, 2).float() / dh)
angles = torch.arange(T).float()[:, None] * inv[None, :]
cos = torch.cat([angles.cos(), angles.cos()], -1)[None, None]  # [1, 1, T, dh]
sin = torch.cat([angles.sin(), angles.sin()], -1)[None, None]
causal = torch.triu(torch.full((T, T), -1e9), 1)


def rms(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g


def rope(x):
    x1, x2 = x.chunk(2, -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def forward(tokens):
    x = emb[tokens]  # [B, T, d]
    for ly in layers:
        h = rms(x, ly["n1"])
        q = rope((h @ ly["wq"]).view(B, T, H, dh).transpose(1, 2))
        k = rope((h @ ly["wk"]).view(B, T, H, dh).transpose(1, 2))
        v = (h @ ly["wv"]).view(B, T, H, dh).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + causal, -1)
        x = x + (att @ v).transpose(1, 2).reshape(B, T, d) @ ly["wo"]
        h = rms(x, ly["n2"])
        up = h @ ly["w1"]
        x = x + torch.nn.functional.silu(up) @ ly["w2"]
    return rms(x, final_norm)


tokens = torch.randint(0, V, (B, T))
targets = tokens[:, P:]  # answer tokens, predicted by positions P-1 … T-2
behaviour = torch.full((B, A), -math.log(V))
advantages = torch.randn(B, 1)
mask = torch.ones(B, A)
opt = torch.optim.Adam(params, lr=1e-3)


def step():
    opt.zero_grad()
    hidden = forward(tokens)[:, P - 1 : T - 1]  # [B, A, d]
    logp = torch.log_softmax(hidden @ out_w, -1).gather(-1, targets[..., None])[..., 0]
    ratio = torch.exp(logp - behaviour)
    loss = torch.maximum(-advantages * ratio, -advantages * ratio.clamp(1 - 0.2, 1 + 0.28))
    loss = (loss * mask).sum() / mask.sum()
    loss.backward()
    opt.step()
    return loss.item()


def reply(obj):
    print(json.dumps(obj), flush=True)


reply({"ready": True, "params": sum(p.numel() for p in params), "torch": torch.__version__})
for line in sys.stdin:
    command = line.split()
    if command[:1] == ["threads"]:
        torch.set_num_threads(int(command[1]))
        reply({"threads": torch.get_num_threads()})
    elif command == ["step"]:
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        reply({"stepMs": wall * 1000, "cpuMs": cpu * 1000, "loss": loss})
    else:
        reply({"error": f"unknown command {line.strip()!r}"})
