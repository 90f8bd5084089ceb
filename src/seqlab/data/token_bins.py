"""Token bins, nanoGPT's format: `train.bin` / `val.bin` (flat uint16 token ids) + `meta.json`.

Two builders write a dataset directory (`manifest.json` beside the bins):

- `synthetic_text_bins`: the synthetic world's sentences as English text, byte-level tokens
  (UTF-8 bytes 0..255) with an end-of-text token 256 after each sentence (GPT-2's
  <|endoftext|> role), so vocab_size 257. No download, a few seconds.
- `token_bins`: existing bins (e.g. nanoGPT's prepared OpenWebText, 9B tokens) by path,
  symlinked by default rather than copied.

`run_token_bin_checks` (the CHECKERS entry for manifest kind "token_bins") scans the bins in
chunks: token range vs vocab, file sizes vs the manifest, split sizes, and the unigram entropy
of train (the plateau baseline).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.config import from_dict
from seqlab.config_datasets import BinChecks, SyntheticTextBins, TokenBins, params_of
from seqlab.data.checks_report import checks_report, entropy_nats
from seqlab.data.manifest import write_dataset_manifest
from seqlab.data.progress import Progress
from seqlab.data.world import World, stream_rng
from seqlab.errors import SeqlabError
from seqlab.files import read_json, unpickle_trusted, write_json

BYTE_VOCAB = 256
EOT = 256  # end-of-text token of the byte-level tokenizer
SPLITS = ("train", "val")
CHUNK = 1 << 22  # tokens per scan chunk (8 MiB of uint16), read by file reads (not resident)


def encode_bytes(text: str) -> np.ndarray:
    """The byte-level tokenizer: UTF-8 bytes as token ids 0..255."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)


def decode_bytes(tokens: np.ndarray) -> str:
    """Inverse of encode_bytes; EOT becomes a newline, other ids >= 256 are dropped."""
    t = np.asarray(tokens)
    out = np.where(t == EOT, ord("\n"), t)
    return bytes(out[out < BYTE_VOCAB].astype(np.uint8)).decode("utf-8", errors="replace")


def write_bin(path: Path, tokens: np.ndarray) -> None:
    """One flat uint16 file, as nanoGPT's prepare.py writes it (arr.tofile)."""
    np.asarray(tokens, dtype=np.uint16).tofile(path)


def read_bin(path: str | Path) -> np.memmap:
    """A read-only memmap of a bin. Open it anew per batch (see TextLMTask): a long-lived
    memmap's touched pages count toward the process's memory."""
    return np.memmap(path, dtype=np.uint16, mode="r")


def _manifest(name: str, kind: str, out: Path, vocab: int, docs: dict, **extra: Any) -> dict:
    splits = {}
    for split in SPLITS:
        n = (out / f"{split}.bin").stat().st_size // 2
        splits[split] = {"path": f"{split}.bin", "n_tokens": n}
        if docs.get(split) is not None:
            splits[split]["n_documents"] = docs[split]
    params = extra.pop("params", {})
    return write_dataset_manifest(
        out / "manifest.json",
        name,
        "token_bins",
        splits,
        params,
        source=kind,
        vocab_size=vocab,
        n_token_ids=vocab,
        dtype="uint16",
        **extra,
    )


def build_synthetic_text_bins(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Sentences of the synthetic world -> byte tokens + EOT -> train.bin / val.bin."""
    params = {k: v for k, v in params.items() if k != "checks"}  # the check rule's keys
    p = from_dict(SyntheticTextBins, params, f"datasets.{name}")
    world = World(p.world_params())
    out = Path(out_dir)
    train = world.sentences(p.n_train_sentences, stream_rng(p.seed, "text-train"))
    seen = set(train)
    val = [
        s
        for s in world.sentences(2 * p.n_val_sentences, stream_rng(p.seed, "text-val"))
        if s not in seen
    ][: p.n_val_sentences]
    docs = {}
    for split, sents in (("train", train), ("val", val)):
        if not sents:
            raise SeqlabError(f"dataset {name!r}: no {split} sentences; raise lexicon_size")
        eot = np.array([EOT], np.uint16)
        write_bin(
            out / f"{split}.bin",
            np.concatenate([a for s in sents for a in (encode_bytes(world.text(s)), eot)]),
        )
        docs[split] = len(sents)
    meta = {"vocab_size": BYTE_VOCAB + 1, "tokenizer": "bytes", "eot_token": EOT}
    write_json(out / "meta.json", meta)
    return _manifest(
        name,
        "synthetic_text_bins",
        out,
        BYTE_VOCAB + 1,
        docs,
        tokenizer="bytes",
        eot_token=EOT,
        params=params_of(p),
    )


def ingest_token_bins(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Existing nanoGPT bins by path: linked (or copied) beside a manifest."""
    params = {k: v for k, v in params.items() if k != "checks"}  # the check rule's keys
    p = from_dict(TokenBins, params, f"datasets.{name}")
    src, out = Path(p.path).expanduser().resolve(), Path(out_dir)
    for split in SPLITS:
        if not (src / f"{split}.bin").is_file():
            raise SeqlabError(
                f"dataset {name!r}: {src / f'{split}.bin'} not found; "
                "point `path` at nanoGPT's prepared data directory"
            )
    meta = read_json(src / "meta.json") if (src / "meta.json").exists() else {}
    if not meta and (src / "meta.pkl").exists() and p.trusted:
        meta = _read_meta_pkl(src / "meta.pkl")
    vocab = p.vocab_size or meta.get("vocab_size")
    if not vocab:
        pkl = (src / "meta.pkl").exists()
        raise SeqlabError(
            f"dataset {name!r}: vocab_size unknown ({src} has no meta.json with it); "
            + (
                "it has nanoGPT's meta.pkl: set `trusted: true` to read it (a pickle runs code), "
                "or set vocab_size"
                if pkl
                else "set vocab_size (50257 for GPT-2's tokenizer, the charset size for *_char)"
            )
        )
    if meta.get("vocab_size") not in (None, vocab):
        raise SeqlabError(
            f"dataset {name!r}: vocab_size {vocab} but {src}/meta.json says {meta['vocab_size']}"
        )
    for split in SPLITS:
        if p.link:
            os.symlink(src / f"{split}.bin", out / f"{split}.bin")
        else:
            shutil.copyfile(src / f"{split}.bin", out / f"{split}.bin")
    write_json(out / "meta.json", {**meta, "vocab_size": int(vocab)})
    params_out = {**params_of(p), "path": str(src)}
    return _manifest(name, "token_bins", out, int(vocab), {}, params=params_out)


def _read_meta_pkl(path: Path) -> dict[str, Any]:
    """nanoGPT's meta.pkl (shakespeare_char: vocab_size, itos, stoi); only when trusted."""
    meta = unpickle_trusted(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("vocab_size"), int):
        raise SeqlabError(f"{path}: no integer vocab_size in it; set vocab_size in the config")
    return {"vocab_size": meta["vocab_size"], "source_meta": "meta.pkl"}


# -- checks -------------------------------------------------------------------------------


def _scan(path: Path, V: int, keep: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Token counts (length max(V, max id + 1)) and the first `keep` (position, id) >= V."""
    counts = np.zeros(V, np.int64)
    bad: list[tuple[int, int]] = []
    prog = Progress(f"checks {path.name}", path.stat().st_size // 2)
    with open(path, "rb") as f:  # plain reads: a full pass through a map stays resident
        for start in range(0, path.stat().st_size // 2, CHUNK):
            chunk = np.fromfile(f, np.uint16, CHUNK)
            prog.update(len(chunk))
            counts, bad = _count(chunk, start, counts, bad, V, keep)
    prog.done()
    return counts, bad


def _count(chunk: np.ndarray, start: int, counts: np.ndarray, bad: list, V: int, keep: int):
    """Add a chunk's token counts; note its first out-of-range (position, id) pairs."""
    c = np.bincount(chunk, minlength=V)
    if len(c) > len(counts):
        counts = np.concatenate([counts, np.zeros(len(c) - len(counts), np.int64)])
    counts[: len(c)] += c
    if len(bad) < keep and (chunk.max(initial=0) >= V):
        pos = np.flatnonzero(chunk >= V)[: keep - len(bad)]
        bad += [(int(start + i), int(chunk[i])) for i in pos]
    return counts, bad


def _more(n: int) -> str:
    return f" (+{n - 1} more listed in checks.json)" if n > 1 else ""


def run_token_bin_checks(manifest_path: str | Path, params: dict[str, Any] | None = None) -> dict:
    """Every check of a token-bin dataset; the checks.json layout of seqlab.data.checks."""
    p = from_dict(BinChecks, dict(params or {}), "checks")
    man = read_json(manifest_path)
    root, V = Path(manifest_path).parent, int(man["vocab_size"])
    checks: dict[str, tuple[dict[str, Any], list[str]]] = {}
    sizes, counts = {}, {}
    for split in SPLITS:
        path = root / man["splits"][split]["path"]
        size = path.stat().st_size if path.exists() else -1
        sizes[split] = size // 2
        fails = []
        if size < 0:
            fails.append(f"check file_sizes failed: {path} is missing; rerun the prepare rule")
        elif size % 2 or size // 2 != man["splits"][split]["n_tokens"]:
            fails.append(
                f"check file_sizes failed: {path} has {size} bytes, manifest says "
                f"{man['splits'][split]['n_tokens']} uint16 tokens; rebuild the dataset"
            )
        checks[f"file_sizes_{split}"] = ({"bytes": size}, fails)
        if size > 0 and not fails:
            counts[split], bad = _scan(path, V, p.max_listed)
            detail = {
                "max_id": int(np.flatnonzero(counts[split]).max()),
                "vocab_size": V,
                "out_of_range": bad,
            }
            fails = [
                f"check token_range failed: {path} position {pos} holds token {tok} >= "
                f"vocab_size {V}{_more(len(bad))}; wrong tokenizer or vocab_size"
                for pos, tok in bad[:1]
            ]
            checks[f"token_range_{split}"] = (detail, fails)
    total = sizes["train"] + sizes["val"]
    share = sizes["val"] / total if total > 0 else 0.0
    fails = [
        f"check split_sizes failed: {s}.bin has {n} tokens, needs > seq_len + 1 = {p.seq_len + 1}"
        for s, n in sizes.items()
        if n <= p.seq_len + 1
    ]
    if total > 0 and not p.min_val_share <= share <= p.max_val_share:
        fails.append(
            f"check split_sizes failed: val is {share:.4%} of the tokens, outside "
            f"[{p.min_val_share}, {p.max_val_share}]; re-split the data"
        )
    checks["split_sizes"] = (
        {"train_tokens": sizes["train"], "val_tokens": sizes["val"], "val_share": share},
        fails,
    )
    ent: dict[str, Any] = {}
    if "train" in counts:
        ent = {
            "unigram_entropy_nats": entropy_nats(counts["train"]),
            "n_types": int(np.count_nonzero(counts["train"])),
        }
    return checks_report(
        checks,
        asdict(p),
        dataset=man.get("dataset"),
        manifest=str(manifest_path),
        vocab_size=V,
        **ent,
    )
