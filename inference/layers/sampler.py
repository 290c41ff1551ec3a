"""Token selection per request: penalties, temperature, top-k, top-p, min-p, seeded sampling, logprobs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine.sequence import Sequence


@dataclass
class TokenLogprob:
    token_id: int
    logprob: float
    top: list[tuple[int, float]]  # the N most likely tokens at this position, most likely first


def apply_penalties(logits: torch.Tensor, seqs: list[Sequence]) -> None:
    """In place: HF repetition penalty over prompt+output; OpenAI presence/frequency over output."""
    vocab = logits.shape[-1]
    for row, seq in enumerate(seqs):
        p = seq.params
        if not p.uses_penalties:
            continue
        if p.repetition_penalty != 1.0:
            ids = torch.tensor(sorted(set(seq.token_ids)), device=logits.device)
            seen = logits[row, ids]
            logits[row, ids] = torch.where(seen > 0, seen / p.repetition_penalty, seen * p.repetition_penalty)
        if (p.presence_penalty or p.frequency_penalty) and seq.num_output_tokens:
            out = torch.tensor(seq.output_token_ids, device=logits.device)
            counts = torch.bincount(out, minlength=vocab)[:vocab].to(logits.dtype)
            logits[row] -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(logits.dtype)


def filter_logits(logits: torch.Tensor, top_k: list[int], top_p: list[float], min_p: list[float]) -> torch.Tensor:
    """Rows of temperature-scaled logits with tokens outside top-k / top-p / min-p set to -inf."""
    vocab = logits.shape[-1]
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    ranks = torch.arange(vocab, device=logits.device)
    k = torch.tensor([kk if kk > 0 else vocab for kk in top_k], device=logits.device)
    drop = ranks[None, :] >= k[:, None]
    probs = sorted_logits.softmax(-1)
    p = torch.tensor(top_p, device=logits.device, dtype=probs.dtype)
    drop |= (probs.cumsum(-1) - probs) > p[:, None]
    mp = torch.tensor(min_p, device=logits.device, dtype=probs.dtype)
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
        if all(s.params.greedy and not s.params.uses_penalties for s in seqs):
            tokens = logits.argmax(-1).tolist()
        else:
            logits = logits.clone()
            apply_penalties(logits, seqs)
            tokens = logits.argmax(-1).tolist()
            rows = [i for i, s in enumerate(seqs) if not s.params.greedy]
            if rows:
                sub = logits[rows] / torch.tensor(
                    [seqs[i].params.temperature for i in rows], device=logits.device)[:, None]
                filtered = [i for i in rows if seqs[i].params.top_k > 0 or seqs[i].params.top_p < 1
                            or seqs[i].params.min_p > 0]
                if filtered:
                    pos = [rows.index(i) for i in filtered]
                    sub[pos] = filter_logits(sub[pos], [seqs[i].params.top_k for i in filtered],
                                             [seqs[i].params.top_p for i in filtered],
                                             [seqs[i].params.min_p for i in filtered])
                probs = sub.softmax(-1)
                for j, i in enumerate(rows):
                    noise = torch.empty_like(probs[j]).exponential_(generator=self._generator(seqs[i]))
                    tokens[i] = int((probs[j] / noise).argmax())
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
