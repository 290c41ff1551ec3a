"""Curbside clinical core: instrument scoring, triage and the consult pipeline the UI calls into."""
