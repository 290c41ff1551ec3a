"""Multi-LoRA serving: PEFT adapters applied per request on top of one (possibly quantized) base model."""
