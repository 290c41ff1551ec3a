"""Token selection per request: penalties, temperature, top-k, top-p, min-p, seeded sampling, logprobs.

Everything runs on the logits' device; the chosen token ids come back to the host in one `.tolist()`, the
step's only wait for the GPU (logprobs, when asked for, are read after it). Host values (temperatures,
penalised ids, rows) go to the device through pinned, non-blocking copies, which do not wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine.sequence import Sequence


@dataclass
class TokenLogprob:
    token_id: int
    logprob: float
    top: list[tuple[int, float]]  # the N most likely tokens at this position, most likely first


def to_device(values: list, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A tensor of host values on `device`; on CUDA copied without waiting for the queued GPU work."""
    t = torch.tensor(values, dtype=dtype)
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def apply_penalties(logits: torch.Tensor, seqs: list[Sequence]) -> None:
    """In place: HF repetition penalty over prompt+output; OpenAI presence/frequency over output."""
    vocab = logits.shape[-1]
    for row, seq in enumerate(seqs):
        p = seq.params
        if not p.uses_penalties:
            continue
        if p.repetition_penalty != 1.0:
            ids = to_device(sorted(set(seq.token_ids)), logits.device)
            seen = logits[row, ids]
            logits[row, ids] = torch.where(seen > 0, seen / p.repetition_penalty, seen * p.repetition_penalty)
        if (p.presence_penalty or p.frequency_penalty) and seq.num_output_tokens:
            out = to_device(seq.output_token_ids, logits.device)
            # index_add_, not bincount, which reads its input's max back to the host on CUDA
            counts = torch.zeros(vocab, dtype=logits.dtype, device=logits.device).index_add_(
                0, out, torch.ones(out.shape, dtype=logits.dtype, device=logits.device))
            logits[row] -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(logits.dtype)


def filter_logits(logits: torch.Tensor, top_k: list[int], top_p: list[float], min_p: list[float]) -> torch.Tensor:
    """Rows of temperature-scaled logits with tokens outside top-k / top-p / min-p set to -inf."""
    vocab = logits.shape[-1]
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    ranks = torch.arange(vocab, device=logits.device)
    k = to_device([kk if kk > 0 else vocab for kk in top_k], logits.device)
    drop = ranks[None, :] >= k[:, None]
    probs = sorted_logits.softmax(-1)
    p = to_device(top_p, logits.device, probs.dtype)
    drop |= (probs.cumsum(-1) - probs) > p[:, None]
    mp = to_device(min_p, logits.device, probs.dtype)
    drop |= probs < (mp[:, None] * probs[:, :1])
    drop[:, 0] = False  # the most likely token always survives
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, sorted_logits)


class Sampler:
    """Picks one token per row of logits [N, vocab]; seeded requests get their own generator."""

    def __init__(self, device: str, seed: int = 0):
        self.device = device
        self.default_generator = torch.Generator(device=device).manual_seed(seed)
        self.generators: dict[str, torch.Generator] = {}

    def forget(self, request_id: str) -> None:
        self.generators.pop(request_id, None)

    def _generator(self, seq: Sequence) -> torch.Generator:
        if seq.params.seed is None:
            return self.default_generator
        g = self.generators.get(seq.request_id)
        if g is None:
            g = torch.Generator(device=self.device).manual_seed(seq.params.seed)
            self.generators[seq.request_id] = g
        return g

    def __call__(self, logits: torch.Tensor, seqs: list[Sequence]) -> tuple[list[int], list[TokenLogprob | None]]:
        raw = logits
        want_logprobs = [s.params.logprobs is not None for s in seqs]
        device = logits.device
        if all(s.params.greedy and not s.params.uses_penalties for s in seqs):
            chosen = logits.argmax(-1)
        else:
            logits = logits.clone()
            apply_penalties(logits, seqs)
            chosen = logits.argmax(-1)
            rows = [i for i, s in enumerate(seqs) if not s.params.greedy]
            if rows:
                sub = logits.index_select(0, to_device(rows, device)) / to_device(
                    [seqs[i].params.temperature for i in rows], device)[:, None]
                filtered = [i for i in rows if seqs[i].params.top_k > 0 or seqs[i].params.top_p < 1
                            or seqs[i].params.min_p > 0]
                if filtered:
                    pos = to_device([rows.index(i) for i in filtered], device)
                    sub[pos] = filter_logits(sub[pos], [seqs[i].params.top_k for i in filtered],
                                             [seqs[i].params.top_p for i in filtered],
                                             [seqs[i].params.min_p for i in filtered])
                probs = sub.softmax(-1)
                # one draw per row, each from its request's generator (seeded requests replay exactly)
                picks = [(probs[j] / torch.empty_like(probs[j]).exponential_(generator=self._generator(seqs[i])))
                         .argmax() for j, i in enumerate(rows)]
                chosen = chosen.index_copy(0, to_device(rows, device), torch.stack(picks))
        tokens = chosen.tolist()
        logprobs: list[TokenLogprob | None] = [None] * len(seqs)
        if any(want_logprobs):
            lp = raw[[i for i, w in enumerate(want_logprobs) if w]].log_softmax(-1)
            j = 0
            for i, seq in enumerate(seqs):
                if not want_logprobs[i]:
                    continue
                n = seq.params.logprobs or 0
                top = lp[j].topk(n) if n else None
                logprobs[i] = TokenLogprob(
                    token_id=tokens[i], logprob=float(lp[j, tokens[i]]),
                    top=list(zip(top.indices.tolist(), top.values.tolist(), strict=True)) if top is not None else [],
                )
                j += 1
        return tokens, logprobs
