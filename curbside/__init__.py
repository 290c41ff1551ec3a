"""Curbside: command line and settings that wire the engine, retrieval, tuning and the app together."""
