"""Small guideline documents for the retrieval tests."""

from __future__ import annotations

from pathlib import Path


def guideline(doc_id: str, topic: str, body: str, version: str = "1") -> bytes:
    """A small Markdown guideline with front matter."""
    return (f"---\nid: {doc_id}\ntitle: {doc_id.replace('-', ' ').title()}\ntopic: {topic}\n"
            f"source: Test source (2026)\nversion: \"{version}\"\n---\n\n# {doc_id}\n\n{body}\n").encode()


LITHIUM = guideline("lithium-test", "bipolar", "## Monitoring\n\n- Check lithium levels 12 hours after the dose, "
                    "every 3 months in the first year.\n- Check renal and thyroid function every 6 months.")
NALOXONE = guideline("naloxone-test", "opioids", "## Overdose prevention\n\n- Offer take-home naloxone to everyone "
                     "prescribed opioids for opioid use disorder.")
INSOMNIA = guideline("insomnia-test", "insomnia", "## First line\n\n- Offer CBT for insomnia before any hypnotic.")


def doc_ids(hits) -> list[str]:
    return [h.doc_id for h in hits]


def store_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
