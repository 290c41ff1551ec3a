"""Check every Triton kernel against the torch path it replaces, on random inputs.

    python -m inference.kernels.verify --device cpu [--json out.json]    # Triton's interpreter (slow, small)
    python -m inference.kernels.verify --device cuda [--json out.json]   # a GPU, realistic head sizes too

Cases cover GQA 4:1 and 1:1, head dims 16-128, block size 16 with context lengths that are not multiples of
it, cached prefixes with several-token chunks, split contexts (flash decoding), float32 / bf16 / fp16 and
int8 / fp8 caches. The reference is the engine's own torch code (layers/attention.py, RMSNorm in
models/llama.py, layers/rotary.py), with the kernels switched off. Exits 1 if any case is out of tolerance.

Under the interpreter (Triton 3.9) bf16 results differ by a unit in the last place more than on a GPU: the
interpreter truncates float32 -> bf16 conversions where the GPU rounds to nearest, and its bf16 `tl.dot` is
wrong, so the kernels take float32 dot products on CPU tensors (see kernels/paged_attention.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

import torch

# max |kernel - reference| allowed, for outputs of magnitude ~1: float32 differs in summation order only;
# bf16/fp16 outputs differ by about one rounding of the output (bf16 ulp at 2 is 2^-7)
TOLERANCE = {torch.float32: 2e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}


@dataclass
class Result:
    kernel: str
    case: str
    max_abs_err: float
    tolerance: float
    ok: bool


def _tol(dtype: torch.dtype, kv: str) -> float:
    # an int8 cache is dequantized to the model dtype by the reference but kept in float32 by the kernel
    return TOLERANCE[dtype] if kv == "auto" else max(TOLERANCE[dtype], 3e-2 if dtype != torch.float32 else 1e-4)


def _caches(num_blocks: int, block_size: int, kv_heads: int, head_dim: int, dtype: torch.dtype, kv: str,
            device: str):
    from ..engine.model_runner import kv_cache

    shape = (num_blocks, block_size, kv_heads, head_dim)
    return kv_cache(shape, dtype, kv, device), kv_cache(shape, dtype, kv, device)


def _block_tables(ctx_lens: list[int], block_size: int, num_blocks: int, g: torch.Generator) -> list[list[int]]:
    """Each sequence's blocks, drawn at random (never block 0) so tables are not contiguous ranges."""
    order = (torch.randperm(num_blocks - 1, generator=g) + 1).tolist()
    tables, i = [], 0
    for n in ctx_lens:
        k = -(-n // block_size)
        tables.append(order[i:i + k])
        i += k
    return tables


def _fill(k_cache, v_cache, tables: list[list[int]], upto: list[int], block_size: int, kv_heads: int,
          head_dim: int, dtype: torch.dtype, device: str, g: torch.Generator) -> None:
    """Write random keys and values for the first upto[s] tokens of each sequence."""
    from ..layers.attention import write_kv

    slots = [t[p // block_size] * block_size + p % block_size for t, n in zip(tables, upto, strict=True)
             for p in range(n)]
    if not slots:
        return
    k = torch.randn(len(slots), kv_heads, head_dim, generator=g).to(dtype).to(device)
    v = torch.randn(len(slots), kv_heads, head_dim, generator=g).to(dtype).to(device)
    write_kv(k_cache, v_cache, k, v, torch.tensor(slots, device=device))


def _padded(tables: list[list[int]], device: str) -> torch.Tensor:
    width = max(len(t) for t in tables)
    return torch.tensor([t + [0] * (width - len(t)) for t in tables], device=device)


def check_decode(dtype: torch.dtype, head_dim: int, heads: int, kv_heads: int, kv: str, ctx_lens: list[int],
                 splits: int | None, device: str, block_size: int = 16, seed: int = 0) -> Result:
    """The Triton decode kernel against the torch decode path, through layers.attention.paged_attention."""
    from .. import kernels
    from ..layers.attention import AttentionMetadata, DecodeChunk, paged_attention
    from .paged_attention import paged_decode

    g = torch.Generator().manual_seed(seed)
    num_blocks = sum(-(-n // block_size) for n in ctx_lens) + 3
    k_cache, v_cache = _caches(num_blocks, block_size, kv_heads, head_dim, dtype, kv, device)
    tables = _block_tables(ctx_lens, block_size, num_blocks, g)
    _fill(k_cache, v_cache, tables, [n - 1 for n in ctx_lens], block_size, kv_heads, head_dim, dtype, device, g)
    b = len(ctx_lens)
    q = torch.randn(b, heads, head_dim, generator=g).to(dtype).to(device)
    k_new = torch.randn(b, kv_heads, head_dim, generator=g).to(dtype).to(device)
    v_new = torch.randn(b, kv_heads, head_dim, generator=g).to(dtype).to(device)
    slots = torch.tensor([t[(n - 1) // block_size] * block_size + (n - 1) % block_size
                          for t, n in zip(tables, ctx_lens, strict=True)], device=device)
    bt = _padded(tables, device)
    width = torch.arange(bt.shape[1] * block_size, device=device)
    mask = (width[None, :] < torch.tensor(ctx_lens, device=device)[:, None])[:, None, None, :]
    scale = head_dim**-0.5
    kernels.set_enabled(False)
    ref = paged_attention(q, k_new, v_new, k_cache, v_cache,
                          AttentionMetadata(slots, decodes=[DecodeChunk(0, bt, mask)]), scale)
    kernels.set_enabled(True)
    if splits is None:  # through the layer, as the engine calls it
        got = paged_attention(q, k_new, v_new, k_cache, v_cache, AttentionMetadata(
            slots, decodes=[DecodeChunk(0, bt, None, torch.tensor(ctx_lens, device=device))]), scale)
    else:
        scales = (k_cache.scale, v_cache.scale) if kv == "int8" else (None, None)
        caches = (k_cache.data, v_cache.data) if kv == "int8" else (k_cache, v_cache)
        got = paged_decode(q, *caches, bt, torch.tensor(ctx_lens, device=device), scale,
                           k_scale=scales[0], v_scale=scales[1], num_splits=splits)
    err = (got.float() - ref.float()).abs().max().item()
    tol = _tol(dtype, kv)
    name = (f"{str(dtype)[6:]} d{head_dim} h{heads}/{kv_heads} kv={kv} ctx={ctx_lens} "
            f"splits={splits or 'auto'}")
    return Result("paged_decode", name, err, tol, err <= tol)


def check_prefill(dtype: torch.dtype, head_dim: int, heads: int, kv_heads: int, chunks: list[tuple[int, int]],
                  device: str, block_size: int = 16, seed: int = 0) -> Result:
    """The Triton prefill kernel against the torch prefill path for chunks of (cached tokens, new tokens)."""
    from .. import kernels
    from ..layers.attention import AttentionMetadata, PagedPrefill, PrefillSpan, paged_attention

    g = torch.Generator().manual_seed(seed)
    ctx_lens = [c + n for c, n in chunks]
    num_blocks = sum(-(-n // block_size) for n in ctx_lens) + 3
    k_cache, v_cache = _caches(num_blocks, block_size, kv_heads, head_dim, dtype, "auto", device)
    tables = _block_tables(ctx_lens, block_size, num_blocks, g)
    _fill(k_cache, v_cache, tables, [c for c, _ in chunks], block_size, kv_heads, head_dim, dtype, device, g)
    total = sum(n for _, n in chunks)
    q = torch.randn(total, heads, head_dim, generator=g).to(dtype).to(device)
    k = torch.randn(total, kv_heads, head_dim, generator=g).to(dtype).to(device)
    v = torch.randn(total, kv_heads, head_dim, generator=g).to(dtype).to(device)
    slots, spans, starts, row = [], [], [], 0
    for (cached, n), t in zip(chunks, tables, strict=True):  # as model_runner.prepare builds them
        slots += [t[p // block_size] * block_size + p % block_size for p in range(cached, cached + n)]
        if cached == 0:
            spans.append(PrefillSpan(row, n, n, None, None))
        else:
            table = torch.tensor(t, device=device)
            q_pos = torch.arange(cached, cached + n, device=device)
            mask = torch.arange(cached + n, device=device)[None, :] <= q_pos[:, None]
            spans.append(PrefillSpan(row, n, cached + n, table, mask))
        starts.append(row)
        row += n
    slot_mapping = torch.tensor(slots, device=device)
    scale = head_dim**-0.5
    kernels.set_enabled(False)
    ref = paged_attention(q, k, v, k_cache, v_cache, AttentionMetadata(slot_mapping, spans, total), scale)
    kernels.set_enabled(True)
    info = torch.tensor([starts, [n for _, n in chunks], ctx_lens], device=device)
    paged = PagedPrefill(info[0], info[1], info[2], _padded(tables, device), max(n for _, n in chunks))
    got = paged_attention(q, k, v, k_cache, v_cache, AttentionMetadata(slot_mapping, [], total, paged_prefill=paged),
                          scale)
    err = (got.float() - ref.float()).abs().max().item()
    tol = TOLERANCE[dtype]
    return Result("paged_prefill", f"{str(dtype)[6:]} d{head_dim} h{heads}/{kv_heads} (cached, new)={chunks}",
                  err, tol, err <= tol)


def check_rms_norm(dtype: torch.dtype, hidden: int, tokens: int, residual: bool, device: str,
                   seed: int = 0) -> Result:
    from .. import kernels
    from ..models.llama import RMSNorm

    g = torch.Generator().manual_seed(seed)
    norm = RMSNorm(hidden, 1e-5).to(dtype).to(device)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(hidden, generator=g) + 0.5)
    x = (torch.randn(tokens, hidden, generator=g) * 3).to(dtype).to(device)
    r = torch.randn(tokens, hidden, generator=g).to(dtype).to(device) if residual else None
    with torch.no_grad():
        kernels.set_enabled(False)
        ref = norm(x, r)
        kernels.set_enabled(True)
        got = norm(x, r)
    if residual:
        err = max((got[0].float() - ref[0].float()).abs().max().item(),
                  (got[1].float() - ref[1].float()).abs().max().item())
    else:
        err = (got.float() - ref.float()).abs().max().item()
    tol = TOLERANCE[dtype] * 4  # outputs up to ~4 (weights up to 1.5 times normed values)
    return Result("rms_norm", f"{str(dtype)[6:]} hidden={hidden} tokens={tokens} residual={residual}",
                  err, tol, err <= tol)


def check_rotary(dtype: torch.dtype, head_dim: int, heads: int, kv_heads: int, tokens: int, device: str,
                 scaling: dict | None = None, seed: int = 0) -> Result:
    from .. import kernels
    from ..layers.rotary import RotaryEmbedding, rotate

    g = torch.Generator().manual_seed(seed)
    rope = RotaryEmbedding(head_dim, 4096, 500000.0 if scaling else 10000.0, scaling).to(device)
    positions = torch.randint(0, 4096, (tokens,), generator=g).to(device)
    # q and k as the model passes them: the leading heads of the fused qkv projection, a strided view
    qkv = torch.randn(tokens, heads + 2 * kv_heads, head_dim, generator=g).to(dtype).to(device)
    x = qkv[:, :heads + kv_heads]
    cos, sin = rope.cos_sin(positions, dtype)
    kernels.set_enabled(False)
    ref = rotate(x, cos, sin)
    kernels.set_enabled(True)
    got = rotate(x, cos, sin)
    err = (got.float() - ref.float()).abs().max().item()
    tol = TOLERANCE[dtype] * 2
    return Result("rotary", f"{str(dtype)[6:]} d{head_dim} heads {heads}+{kv_heads} tokens={tokens}"
                  f"{' llama3' if scaling else ''}", err, tol, err <= tol)


def run_all(device: str, quick: bool = False) -> list[Result]:
    """Every case for `device` ("cpu" means Triton's interpreter, which must already be on)."""
    from .. import kernels

    cpu = device == "cpu"
    kernels.run_on_cpu(cpu)
    dtypes = [torch.float32, torch.bfloat16] + ([] if cpu else [torch.float16])
    dims = [16, 32, 64] if cpu else [64, 128]
    kv_kinds = ["auto", "int8"] + ([] if cpu or torch.cuda.get_device_capability() < (8, 9) else ["fp8"])
    ctx = [1, 17, 50] if cpu else [1, 17, 50, 300, 1000]
    # GQA 4:1 and 1:1; the interpreter pays per program (one per query head in prefill), so fewer heads there
    head_pairs = ((4, 1), (2, 2)) if cpu else ((8, 2), (4, 4))
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 64}
    results: list[Result] = []
    try:
        for dtype in dtypes:
            for d in dims if not quick else dims[-1:]:
                for heads, kv_heads in head_pairs:
                    results.append(check_decode(dtype, d, heads, kv_heads, "auto", ctx, None, device))
                    results.append(check_prefill(dtype, d, heads, kv_heads, [(0, 20), (33, 17), (5, 70), (16, 2)],
                                                 device))
                results.append(check_rotary(dtype, d, 8, 2, 7, device))
            results.append(check_decode(dtype, dims[-1], 8, 2, "auto", ctx, 4, device))  # split contexts
            for kv in kv_kinds[1:]:
                results.append(check_decode(dtype, dims[-1], 8, 2, kv, ctx, None, device))
                results.append(check_decode(dtype, dims[-1], 8, 2, kv, ctx, 2, device))
            results.append(check_rotary(dtype, dims[-1], 4, 1, 5, device, llama3))
            for hidden in (64, 96) if cpu else (2048, 4096):
                results.append(check_rms_norm(dtype, hidden, 5, True, device))
                results.append(check_rms_norm(dtype, hidden, 5, False, device))
        if not cpu:  # a long context that the automatic split count divides, at a realistic width
            results.append(check_decode(torch.bfloat16, 128, 32, 8, "auto", [4000, 3, 2049], None, device))
            results.append(check_prefill(torch.bfloat16, 128, 32, 8, [(0, 512), (1000, 300), (7, 1)], device))
    finally:
        kernels.set_enabled(True)
        kernels.run_on_cpu(False)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--quick", action="store_true", help="one head size per dtype")
    args = ap.parse_args(argv)
    if args.device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        if "triton" in sys.modules:
            print("on the CPU, set TRITON_INTERPRET=1 before triton is imported", file=sys.stderr)
            return 2
        os.environ["TRITON_INTERPRET"] = "1"  # this entry point owns its process: the interpreter is its mode
    start = time.monotonic()
    results = run_all(args.device, args.quick)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.kernel:14} {r.max_abs_err:9.2e} <= {r.tolerance:7.1e}  {r.case}")
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed}/{len(results)} kernel checks passed in {time.monotonic() - start:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in results], f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
