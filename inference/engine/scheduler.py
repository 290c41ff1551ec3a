"""Continuous batching: every step, running sequences first, then waiting ones, under a token budget.

Long prompts are prefilled in chunks so decodes keep flowing. When blocks run out, the most recently
admitted running sequence is preempted: its blocks are freed and it goes back to the front of the
waiting queue, to be recomputed (prompt plus what it had generated) later.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .block_manager import BlockManager
from .sequence import Sequence, Status


@dataclass
class ScheduledBatch:
    """Sequences and how many tokens each computes this step (prefill chunks first, then decodes)."""

    seqs: list[Sequence]
    num_new_tokens: list[int]

    @property
    def num_tokens(self) -> int:
        return sum(self.num_new_tokens)

    def __bool__(self) -> bool:
        return bool(self.seqs)


class Scheduler:
    def __init__(self, block_manager: BlockManager, max_num_seqs: int, max_num_batched_tokens: int,
                 max_loras: int = 0):
        self.bm = block_manager
        self.max_loras = max_loras  # distinct adapters one step may use (resident slots)
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def _preempt(self, seq: Sequence) -> None:
        self.bm.free_sequence(seq)
        seq.status = Status.WAITING
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)

    def schedule(self) -> ScheduledBatch:
        budget = self.max_num_batched_tokens
        chosen: list[tuple[Sequence, int]] = []
        preempted = self.num_preemptions
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            n = min(seq.num_tokens - seq.num_computed_tokens, budget)
            while not self.bm.can_grow(seq, n):
                victim = self.running.pop()
                self._preempt(victim)
                if victim is seq:
                    break
            else:
                self.bm.grow(seq, n)
                self.bm.register_computed(seq, seq.num_computed_tokens + n)
                chosen.append((seq, n))
                budget -= n
                i += 1
                continue
            break  # the current sequence preempted itself; everything after it is gone too
        if self.num_preemptions == preempted:  # no admissions in a step that had to preempt
            loras = {s.lora_name for s in self.running if s.lora_name}
            skipped: list[Sequence] = []  # waiting for an adapter slot; they keep their place in the queue
            while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
                seq = self.waiting[0]
                if seq.lora_name and seq.lora_name not in loras and len(loras) >= self.max_loras:
                    skipped.append(self.waiting.popleft())
                    continue
                n_left = seq.num_tokens - len(self.bm.match_prefix(seq)) * self.bm.block_size
                n = min(n_left, budget)
                if not self.bm.allocate_prompt(seq, n):
                    break
                n = min(seq.num_tokens - seq.num_computed_tokens, budget)
                self.waiting.popleft()
                self.bm.register_computed(seq, seq.num_computed_tokens + n)
                seq.status = Status.RUNNING
                self.running.append(seq)
                chosen.append((seq, n))
                budget -= n
                if seq.lora_name:
                    loras.add(seq.lora_name)
            self.waiting.extendleft(reversed(skipped))
        # prefill chunks first; single-token steps last, by context length so that attention chunks
        # of similar lengths waste little padding
        chosen.sort(key=lambda c: (c[1] == 1, c[0].num_computed_tokens if c[1] == 1 else 0))
        return ScheduledBatch([c[0] for c in chosen], [c[1] for c in chosen])

    def finish(self, seq: Sequence) -> None:
        """Release a finished or aborted sequence wherever it is."""
        if seq in self.running:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        self.bm.free_sequence(seq)
        seq.status = Status.FINISHED
