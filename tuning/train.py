"""Train one adapter (LoRA, prompt tuning or IA3) on chat records: seeded, checkpointed, resumable.

A step is one optimizer update over `batch_size * grad_accum` examples. The example order is a seeded
permutation per epoch, a pure function of (seed, step), so a run resumed from a checkpoint sees exactly the
examples, dropout masks and learning rates it would have seen had it not stopped. Checkpoints hold the
adapter weights, optimizer, scheduler and RNG states; they are written to a temporary directory and renamed,
and `state.json` is written last, so a checkpoint without it is ignored.

Defaults fit the CPU: fp32, one example per forward (no padding to pay for). On CUDA the base model runs in
bfloat16 and the adapter's own weights stay fp32.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .encoding import Encoded, collate, encode
from .methods import (
    DEFAULT_LEARNING_RATE,
    MethodConfig,
    answer_loss,
    attach,
    load_base,
    load_tokenizer,
    resolve_base,
    select_device,
    set_threads,
)

log = logging.getLogger("curbside.tuning")
CHECKPOINTS = "checkpoints"


class TrainError(RuntimeError):
    """Training cannot start or resume (no usable examples, a checkpoint from another configuration)."""


@dataclass
class TrainConfig:
    method: MethodConfig = field(default_factory=MethodConfig)
    base_model: str = "smollm2-135m-instruct"
    learning_rate: float | None = None       # None: the method's default
    max_steps: int = 40
    batch_size: int = 1
    grad_accum: int = 4
    warmup_steps: int = 2
    min_lr_ratio: float = 0.1               # linear decay to this fraction of the peak
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_seq_len: int = 1024
    seed: int = 0
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    device: str = "auto"
    threads: int | None = None

    @property
    def lr(self) -> float:
        return self.learning_rate or DEFAULT_LEARNING_RATE[self.method.method]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["method"] = self.method.to_dict()
        d["learning_rate"] = self.lr
        return d

    def identity(self) -> dict:
        """What a checkpoint must agree on to be resumed (run length and bookkeeping may change)."""
        d = self.to_dict()
        for key in ("max_steps", "checkpoint_every", "keep_checkpoints", "device", "threads"):
            d.pop(key)
        return d


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass


class Trainer:
    """Holds the model and optimizer of one run; `run(until=...)` trains, `finish()` writes the adapter."""

    def __init__(self, config: TrainConfig, records: list[dict], out_dir: Path, models_dir: Path,
                 progress: bool = True):
        self.config = config
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.threads = set_threads(config.threads)
        seed_everything(config.seed)
        self.device, self.dtype = select_device(config.device)
        self.base_path = resolve_base(config.base_model, models_dir)
        self.tokenizer = load_tokenizer(self.base_path)
        self.examples: list[Encoded] = []
        for record in records:
            encoded = encode(record["messages"], self.tokenizer, config.max_seq_len)
            if encoded.answer_tokens:
                self.examples.append(encoded)
        if not self.examples:
            raise TrainError("no training example has answer tokens left after truncation")
        self.truncated = sum(1 for e in self.examples if e.truncated)
        base = load_base(self.base_path, self.device, self.dtype)
        self.model = attach(base, config.method, self.base_path)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:  # adapter weights train in fp32 even over a bf16 base
            p.data = p.data.float()
        self.trainable = sum(p.numel() for p in params)
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step = 0
        self.losses: list[float] = []
        self.step_seconds: list[float] = []
        self.resumed_from: int | None = None
        self._resume()

    # -- schedule and data order ------------------------------------------------------------------------

    def _lr_factor(self, step: int) -> float:
        c = self.config
        if step < c.warmup_steps:
            return (step + 1) / (c.warmup_steps + 1)
        span = max(1, c.max_steps - c.warmup_steps)
        return max(c.min_lr_ratio, 1 - (1 - c.min_lr_ratio) * (step - c.warmup_steps) / span)

    def _example(self, index: int) -> Encoded:
        n = len(self.examples)
        epoch, offset = divmod(index, n)
        order = list(range(n))
        random.Random(f"{self.config.seed}:epoch:{epoch}").shuffle(order)
        return self.examples[order[offset]]

    def micro_batches(self, step: int) -> list[list[Encoded]]:
        c = self.config
        start = step * c.grad_accum * c.batch_size
        return [[self._example(start + m * c.batch_size + b) for b in range(c.batch_size)]
                for m in range(c.grad_accum)]

    # -- training -----------------------------------------------------------------------------------------

    def train_step(self) -> float:
        """One optimizer update; returns the mean loss per answer token."""
        pad = self.tokenizer.pad_token_id
        batches = [collate(b, pad) for b in self.micro_batches(self.step)]
        tokens = sum(int((b["labels"] != -100).sum()) for b in batches)
        total = 0.0
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        for batch in batches:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with autocast:
                loss, _ = answer_loss(self.model, batch)
            (loss / max(1, tokens)).backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad],
                                       self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total / max(1, tokens)

    def run(self, until: int | None = None) -> None:
        """Train up to step `until` (default: max_steps), checkpointing every `checkpoint_every` steps."""
        end = min(until or self.config.max_steps, self.config.max_steps)
        if self.step >= end:
            return
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=end, initial=self.step, desc=f"train {self.config.method.method}", unit="step",
                       dynamic_ncols=True)
        while self.step < end:
            started = time.perf_counter()
            loss = self.train_step()
            self.step_seconds.append(time.perf_counter() - started)
            self.losses.append(loss)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if self.step % self.config.checkpoint_every == 0 or self.step == self.config.max_steps:
                self.save_checkpoint()
        if bar is not None:
            bar.close()

    def seconds_per_step(self) -> float | None:
        """Median measured seconds per step (the first step, which warms up, is left out when there are more)."""
        times = self.step_seconds[1:] or self.step_seconds
        return sorted(times)[len(times) // 2] if times else None

    # -- checkpoints --------------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        root = self.out_dir / CHECKPOINTS
        final = root / f"step-{self.step:06d}"
        tmp = root / f".tmp-step-{self.step:06d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        weights = {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(self.model).items()}
        save_file(weights, str(tmp / "adapter_weights.safetensors"))
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
                   tmp / "trainer.pt")
        state = {"step": self.step, "losses": self.losses, "step_seconds": self.step_seconds,
                 "config": self.config.identity()}
        _write_json(tmp / "state.json", state)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        done = sorted(p for p in root.glob("step-*") if (p / "state.json").exists())
        for old in done[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def latest_checkpoint(self) -> Path | None:
        root = self.out_dir / CHECKPOINTS
        done = sorted(p for p in root.glob("step-*") if (p / "state.json").exists()) if root.exists() else []
        return done[-1] if done else None

    def _resume(self) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        checkpoint = self.latest_checkpoint()
        if checkpoint is None:
            return
        state = json.loads((checkpoint / "state.json").read_text())
        if state["config"] != self.config.identity():
            raise TrainError(f"{checkpoint} was written by a different configuration; use another output "
                             f"directory or delete {self.out_dir / CHECKPOINTS}")
        set_peft_model_state_dict(self.model, load_file(str(checkpoint / "adapter_weights.safetensors")))
        trainer = torch.load(checkpoint / "trainer.pt", weights_only=False)
        self.optimizer.load_state_dict(trainer["optimizer"])
        self.scheduler.load_state_dict(trainer["scheduler"])
        torch.set_rng_state(trainer["torch_rng"])
        random.setstate(trainer["python_rng"])
        if trainer.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(trainer["cuda_rng"])
        self.step = state["step"]
        self.losses = list(state["losses"])
        self.step_seconds = list(state.get("step_seconds", []))
        self.resumed_from = self.step
        log.info("resumed from %s at step %d", checkpoint, self.step)

    # -- outputs ------------------------------------------------------------------------------------------

    def finish(self, adapter_dir: Path | None = None) -> Path:
        """Write the adapter (PEFT format), the loss curve and a summary; returns the adapter directory."""
        adapter_dir = Path(adapter_dir or self.out_dir / "adapter")
        adapter_dir.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(adapter_dir))
        plot_losses(self.losses, self.out_dir / "loss_curve.png", title=f"{self.config.method.method} training loss")
        _write_json(self.out_dir / "train_summary.json", self.summary())
        return adapter_dir

    def summary(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "base_model_path": str(self.base_path),
            "device": str(self.device),
            "threads": self.threads,
            "dtype": str(self.dtype).removeprefix("torch."),
            "steps": self.step,
            "examples_seen": self.step * self.config.batch_size * self.config.grad_accum,
            "train_examples": len(self.examples),
            "truncated_examples": self.truncated,
            "trainable_parameters": self.trainable,
            "seconds_per_step": self.seconds_per_step(),
            "train_seconds": sum(self.step_seconds),
            "resumed_from_step": self.resumed_from,
            "losses": self.losses,
        }


def plot_losses(losses: list[float], path: Path, title: str = "training loss") -> None:
    """A PNG of the per-step loss and its moving average (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = list(range(1, len(losses) + 1))
    ax.plot(steps, losses, lw=1, alpha=0.5, label="loss per step")
    window = max(1, min(10, len(losses) // 5))
    if len(losses) >= window > 1:
        smooth = [sum(losses[i - window + 1:i + 1]) / window for i in range(window - 1, len(losses))]
        ax.plot(steps[window - 1:], smooth, lw=2, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss per answer token")
    ax.set_title(title)
    if losses and all(math.isfinite(v) for v in losses):
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def train(config: TrainConfig, records: list[dict], out_dir: Path, models_dir: Path, progress: bool = True) -> dict:
    """Train (resuming from the latest checkpoint in out_dir when there is one) and write the adapter."""
    trainer = Trainer(config, records, out_dir, models_dir, progress=progress)
    trainer.run()
    adapter = trainer.finish()
    return {**trainer.summary(), "adapter": str(adapter)}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")

