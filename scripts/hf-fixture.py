#!/usr/bin/env python3
"""Tiny random Hugging Face models (Llama and Qwen2) plus reference logits, for factrl's parity test.

Writes, per architecture, a directory in the exact Hugging Face layout — config.json,
model.safetensors (or shards + model.safetensors.index.json), tokenizer.json (byte-level BPE, as in
Llama 3 / Qwen2 / SmolLM) and tokenizer_config.json — and reference.json (a fixed text and the ids the
tokenizer gives it) and reference-logits.safetensors (the logits for every position), computed here by an independent numpy
implementation of the transformers forward pass (LlamaForCausalLM / Qwen2ForCausalLM) in float64.

Only numpy is needed:  python3 scripts/hf-fixture.py models/fixtures/hf
"""

import json
import os
import re
import struct
import sys

import numpy as np

TEXT = "<think> the capital of france is paris . </think> Paris is the capital of France.\n"
CORPUS = (
    "the capital of france is paris. the question is about the capital. "
    "paris is a city in france. the answer is that the capital is paris. "
) * 4


# ── tokenizer: byte-level BPE ───────────────────────────────────────────────────────────────────


def bytes_to_unicode():
    """GPT-2's printable stand-in for every byte (what ByteLevel pre-tokenizers map bytes to)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_CHAR = bytes_to_unicode()
# The Llama 3 / Qwen2 split pattern, restricted to ASCII (\p{L} → [A-Za-z], \p{N} → [0-9]): the
# fixture's texts are ASCII, so it splits them as the real pattern does.
LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
ASCII_SPLIT = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def pretokens(text):
    return ["".join(BYTE_CHAR[b] for b in piece.encode("utf-8")) for piece in ASCII_SPLIT.findall(text)]


def train_merges(corpus, count):
    words = {}
    for piece in pretokens(corpus):
        key = tuple(piece)
        words[key] = words.get(key, 0) + 1
    merges = []
    for _ in range(count):
        pairs = {}
        for word, n in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + n
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        merged = {}
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = n
        words = merged
    return merges


def bpe_encode(text, vocab, merges, added):
    """Added tokens split first (they are never merged), then each pre-token merged by rank."""
    rank = {pair: i for i, pair in enumerate(merges)}
    ids = []
    pattern = "(" + "|".join(re.escape(t) for t in added) + ")" if added else None
    parts = re.split(pattern, text) if pattern else [text]
    for part in parts:
        if part in added:
            ids.append(added[part])
            continue
        for piece in pretokens(part):
            word = list(piece)
            while len(word) > 1:
                pairs = [(rank.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(word, word[1:]))]
                best, i = min(pairs)
                if best == 1 << 30:
                    break
                word[i : i + 2] = [word[i] + word[i + 1]]
            ids.extend(vocab[t] for t in word)
    return ids


def added_token(id_, content):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}


def tokenizer_files(kind, merges):
    vocab = {BYTE_CHAR[b]: i for i, b in enumerate(sorted(BYTE_CHAR))}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    if kind == "llama":
        specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    else:  # Qwen2, with Qwen3's think tokens: the format's markers are then single tokens
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    added = {t: len(vocab) + i for i, t in enumerate(specials)}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added_token(i, t) for t, i in added.items()],
        "normalizer": None if kind == "llama" else {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT if kind == "llama" else LLAMA3_SPLIT.replace("{1,3}", "")}, "behavior": "Isolated", "invert": False},
                byte_level,
            ],
        },
        "post_processor": byte_level
        if kind == "qwen2"
        else {
            "type": "Sequence",
            "processors": [
                {**byte_level, "trim_offsets": False},
                {
                    "type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [
                        {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}},
                        {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                        {"Sequence": {"id": "B", "type_id": 1}},
                    ],
                    "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [added["<|begin_of_text|>"]], "tokens": ["<|begin_of_text|>"]}},
                },
            ],
        },
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": kind == "llama",
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }
    if kind == "llama":
        config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "model_max_length": 256, "tokenizer_class": "PreTrainedTokenizerFast"}
        ids = [added["<|begin_of_text|>"]] + bpe_encode(TEXT, vocab, merges, {})
    else:
        config = {"bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "model_max_length": 256, "tokenizer_class": "Qwen2Tokenizer"}
        ids = bpe_encode(TEXT, vocab, merges, {t: added[t] for t in ("<think>", "</think>")})
    return tokenizer, config, added, ids, len(vocab) + len(specials)


# ── weights and the reference forward pass ──────────────────────────────────────────────────────


def to_bf16_bits(x):
    """float32 → bfloat16 bits, round to nearest even (as torch does)."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def stored(values, dtype):
    """(bytes, the float64 values a reader must get back) of a float array stored as dtype."""
    if dtype == "F32":
        v = values.astype(np.float32)
        return v.astype("<f4").tobytes(), v.astype(np.float64)
    if dtype == "F16":
        v = values.astype(np.float16)
        return v.astype("<f2").tobytes(), v.astype(np.float64)
    bits = to_bf16_bits(values)
    return bits.astype("<u2").tobytes(), (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def safetensors_bytes(tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + b"".join(blobs)


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def reference_logits(cfg, w, ids):
    """transformers' LlamaForCausalLM / Qwen2ForCausalLM forward (eager attention), float64."""
    T = len(ids)
    d, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dh, eps = d // H, cfg["rms_norm_eps"]
    inv_freq = 1.0 / (cfg["rope_theta"] ** (np.arange(0, dh, 2) / dh))
    freqs = np.outer(np.arange(T), inv_freq)
    cos, sin = np.cos(np.concatenate([freqs, freqs], -1)), np.sin(np.concatenate([freqs, freqs], -1))
    causal = np.triu(np.full((T, T), -np.inf), 1)
    x = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name, heads):
            out = h @ w[p + f"self_attn.{name}.weight"].T
            if p + f"self_attn.{name}.bias" in w:
                out = out + w[p + f"self_attn.{name}.bias"]
            return out.reshape(T, heads, dh).transpose(1, 0, 2)

        q, k, v = proj("q_proj", H), proj("k_proj", KV), proj("v_proj", KV)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = np.repeat(k, H // KV, axis=0), np.repeat(v, H // KV, axis=0)  # repeat_kv
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(dh) + causal
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(T, d)
        x = x + context @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def write_model(out, kind, seed):
    rng = np.random.default_rng(seed)
    merges = train_merges(CORPUS, 48)
    tokenizer, tok_config, added, ids, tokens = tokenizer_files(kind, merges)
    vocab_size = (tokens + 31) // 32 * 32  # padded like real checkpoints: rows the tokenizer never emits
    if kind == "llama":
        cfg = {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "rope_scaling": None, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
            "bos_token_id": added["<|begin_of_text|>"], "eos_token_id": added["<|end_of_text|>"], "vocab_size": vocab_size,
            "torch_dtype": "float32",
        }
    else:
        cfg = {
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
            "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 1, "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "use_sliding_window": False, "tie_word_embeddings": True, "bos_token_id": added["<|endoftext|>"],
            "eos_token_id": added["<|endoftext|>"], "vocab_size": vocab_size, "torch_dtype": "bfloat16",
        }
    d, ff, H, KV = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dh = d // H
    shapes = {"model.embed_tokens.weight": (vocab_size, d)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes |= {
            p + "input_layernorm.weight": (d,), p + "self_attn.q_proj.weight": (H * dh, d),
            p + "self_attn.k_proj.weight": (KV * dh, d), p + "self_attn.v_proj.weight": (KV * dh, d),
            p + "self_attn.o_proj.weight": (d, H * dh), p + "post_attention_layernorm.weight": (d,),
            p + "mlp.gate_proj.weight": (ff, d), p + "mlp.up_proj.weight": (ff, d), p + "mlp.down_proj.weight": (d, ff),
        }
        if kind == "qwen2":
            shapes |= {p + "self_attn.q_proj.bias": (H * dh,), p + "self_attn.k_proj.bias": (KV * dh,), p + "self_attn.v_proj.bias": (KV * dh,)}
    shapes["model.norm.weight"] = (d,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (vocab_size, d)
    tensors, weights = {}, {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
            values = 1 + 0.2 * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            values = 0.3 * rng.standard_normal(shape)
        else:
            values = rng.standard_normal(shape) / np.sqrt(shape[-1]) * (2.0 if "embed" in name or "lm_head" in name else 1.0)
        # Llama: F32 with an F16 embedding (mixed dtypes); Qwen2: BF16 throughout (its torch_dtype).
        dtype = "BF16" if kind == "qwen2" else ("F16" if "embed" in name else "F32")
        data, exact = stored(values, dtype)
        tensors[name] = (dtype, shape, data)
        weights[name] = exact.reshape(shape)
    os.makedirs(out, exist_ok=True)
    if kind == "qwen2":  # sharded, as big checkpoints are
        names = list(tensors)
        shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2], "model-00002-of-00002.safetensors": names[len(names) // 2 :]}
        for file, members in shards.items():
            with open(os.path.join(out, file), "wb") as f:
                f.write(safetensors_bytes({n: tensors[n] for n in members}))
        index = {"metadata": {"total_size": sum(len(t[2]) for t in tensors.values())}, "weight_map": {n: f for f, ms in shards.items() for n in ms}}
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
    else:
        with open(os.path.join(out, "model.safetensors"), "wb") as f:
            f.write(safetensors_bytes(tensors))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2)
    logits = reference_logits(cfg, weights, ids).astype(np.float32)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"text": TEXT, "ids": ids}, f)
    with open(os.path.join(out, "reference-logits.safetensors"), "wb") as f:
        f.write(safetensors_bytes({"logits": ("F32", logits.shape, logits.astype("<f4").tobytes())}))


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else "models/fixtures/hf"
    write_model(os.path.join(root, "tiny-llama"), "llama", 1)
    write_model(os.path.join(root, "tiny-qwen2"), "qwen2", 2)
