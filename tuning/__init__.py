"""Right-sizing the model: consult tuning data, PEFT training, evaluation, selection and the default adapter.

| module | job |
|---|---|
| `corpus.py` | the guideline corpus chunked exactly as the store chunks it, each chunk cut as the prompt quotes it |
| `questions.py` | deterministic clinician questions from statements and headings; fixed answer phrasings |
| `dataset.py` | chat JSONL (consult prompts + faithful references), document splits, hashes, user-file validation |
| `encoding.py` | chat template to token ids, labels on the assistant answer only, truncation that keeps Q and A |
| `methods.py` | LoRA / prompt tuning / IA3 configs, device and threads, the one forward pass for all methods |
| `train.py` | the seeded, checkpointed, resumable training loop and its loss curve |
| `metrics.py` | citation validity, key-fact recall, format, abstention (definitions in its docstring) |
| `evaluate.py` | greedy answers and reference perplexity from one prefill per batch |
| `select.py` | candidates within a time budget, the choice, the test run, the published adapter and card |
| `registry.py` | `default_adapter(data_dir)`: the adapter the app should serve by default, if any |
"""
