"""Incremental detokenization and stop strings.

Text is decoded from a sliding window of tokens (prefix_offset .. end), so a token that completes a
multi-byte character or merges with its neighbour's leading space is rendered correctly; a window that
still ends in a partial character ("\\ufffd") emits nothing until the next token completes it.
"""

from __future__ import annotations

from .sequence import Sequence


def append_text(tokenizer, seq: Sequence) -> str:
    """Decode the sequence's newest token(s) into `seq.output_text`; returns the new characters."""
    skip = seq.params.skip_special_tokens
    prefix = tokenizer.decode(seq.token_ids[seq.prefix_offset:seq.read_offset], skip_special_tokens=skip)
    full = tokenizer.decode(seq.token_ids[seq.prefix_offset:], skip_special_tokens=skip)
    if len(full) <= len(prefix) or full.endswith("\ufffd"):
        return ""
    delta = full[len(prefix):]
    seq.prefix_offset = seq.read_offset
    seq.read_offset = seq.num_tokens
    seq.output_text += delta
    return delta


def find_stop(seq: Sequence, new_chars: int) -> int | None:
    """If a stop string appears in the output, truncate there and return its index; else None."""
    stops = seq.params.stop
    if not stops or not new_chars:
        return None
    text = seq.output_text
    start_at = max(0, len(text) - new_chars - max(len(s) for s in stops) + 1)
    best: tuple[int, str] | None = None
    for s in stops:
        i = text.find(s, start_at)
        if i != -1 and (best is None or i < best[0]):
            best = (i, s)
    if best is None:
        return None
    i, s = best
    seq.output_text = text[: i + len(s)] if seq.params.include_stop_str_in_output else text[:i]
    seq.stop_reason = s
    return i


def streamable_length(seq: Sequence) -> int:
    """How much of the output text is safe to stream: hold back what could still begin a stop string."""
    if seq.finished or not seq.params.stop:
        return len(seq.output_text)
    hold = max(len(s) for s in seq.params.stop) - 1
    return max(seq.emitted_text_len, len(seq.output_text) - hold)
