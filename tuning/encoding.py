"""Chat records to token ids for training and scoring: the chat template the server uses, loss on answers only.

A record is rendered with the tokenizer's chat template, as `inference/server` renders a request
(`apply_chat_template(..., add_generation_prompt=True)`), and each assistant message is followed by the
template's end-of-turn token, which is what stops generation. Labels are -100 everywhere except the assistant
tokens (their text and that end-of-turn token).

Truncation keeps what matters: when a record is longer than `max_len`, tokens are dropped from the end of the
guideline excerpts (just before "\\n\\nPatient:"), never from the system prompt, the findings' start, the
question or the answer; only when that is not enough is the answer itself cut at its end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100
CUT_MARKERS = ("\n\nPatient:", "\n\nQuestion:")
MIN_HEAD_TOKENS = 32


class EncodingError(ValueError):
    """A record the chat template cannot render as a prefix-consistent conversation."""


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: int = 0  # tokens dropped

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def end_of_turn(tokenizer) -> str:
    return tokenizer.eos_token or ""


def segments(messages: list[dict], tokenizer) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, trained) pieces: prompts untrained, each assistant answer trained."""
    pieces: list[tuple[str, bool]] = []
    consumed = ""
    eot = end_of_turn(tokenizer)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        if not prompt.startswith(consumed):
            raise EncodingError("the chat template does not render earlier turns as a prefix of later ones")
        pieces.append((prompt[len(consumed):], False))
        answer = message["content"] + eot
        pieces.append((answer, True))
        consumed = prompt + answer
        full = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not full.startswith(consumed):
            raise EncodingError(f"the chat template does not end assistant turns with {eot!r}")
    return pieces


def _cut_point(text: str) -> int:
    """Where the excerpts end: before the patient line (else the question); -1 when neither is there."""
    for marker in CUT_MARKERS:
        at = text.rfind(marker)
        if at > 0:
            return at
    return -1


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def encode(messages: list[dict], tokenizer, max_len: int) -> Encoded:
    """Token ids and labels for one conversation (the last message must be the assistant's)."""
    pieces = segments(messages, tokenizer)
    ids_per_piece = [_ids(tokenizer, text) for text, _ in pieces]
    total = sum(len(ids) for ids in ids_per_piece)
    dropped = 0
    if total > max_len:
        # cut the excerpts of the first prompt: the head (system, findings, excerpts) loses its end
        text = pieces[0][0]
        cut_at = _cut_point(text)
        head_text, tail_text = (text[:cut_at], text[cut_at:]) if cut_at > 0 else (text, "")
        head, tail = _ids(tokenizer, head_text), _ids(tokenizer, tail_text)
        excess = total - max_len + (len(head) + len(tail) - len(ids_per_piece[0]))
        keep = max(MIN_HEAD_TOKENS, len(head) - max(0, excess))
        dropped = len(head) - keep
        ids_per_piece[0] = head[:keep] + tail
        total = sum(len(ids) for ids in ids_per_piece)
    input_ids: list[int] = []
    labels: list[int] = []
    for (_, trained), ids in zip(pieces, ids_per_piece, strict=True):
        input_ids += ids
        labels += ids if trained else [IGNORE] * len(ids)
    if len(input_ids) > max_len:
        dropped += len(input_ids) - max_len
        input_ids, labels = input_ids[:max_len], labels[:max_len]
    return Encoded(input_ids, labels, dropped)


def prompt_ids(messages: list[dict], tokenizer, max_len: int) -> list[int]:
    """The generation prompt for a record (everything before its last assistant message)."""
    upto = messages[:-1] if messages and messages[-1]["role"] == "assistant" else messages
    text = tokenizer.apply_chat_template(upto, tokenize=False, add_generation_prompt=True)
    ids = _ids(tokenizer, text)
    if len(ids) <= max_len:
        return ids
    cut_at = _cut_point(text)
    head, tail = _ids(tokenizer, text[:cut_at]), _ids(tokenizer, text[cut_at:])
    return head[: max(MIN_HEAD_TOKENS, max_len - len(tail))] + tail


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-padded tensors (answers end at the same column) with position ids that skip the padding."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, width - n:] = torch.tensor(e.input_ids)
        labels[row, width - n:] = torch.tensor(e.labels)
        mask[row, width - n:] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
