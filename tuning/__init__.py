"""Training data, PEFT tuning and method selection (being built; see the README's status table)."""
