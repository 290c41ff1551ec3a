"""Pieces the consult and history pages both draw: the urgency banner, scores, the answer and its citations."""

from __future__ import annotations

import re

import streamlit as st

from retrieval.errors import DocumentNotFoundError

INSTRUMENT_NAMES = {
    "phq9": "PHQ-9", "phq2": "PHQ-2", "gad7": "GAD-7", "epds": "EPDS", "auditc": "AUDIT-C", "mdq": "MDQ",
    "pcptsd5": "PC-PTSD-5", "cssrs": "C-SSRS screener", "asq": "ASQ",
}


def urgency_banner(urgency: str, red_flags: list[dict], safety_actions: list[str]) -> None:
    """Emergency in red with the safety actions, urgent in amber, routine in blue; evidence under each."""
    evidence = "\n".join(f"- **{f['kind'].replace('_', ' ')}** ({f['source']}): “{f['evidence']}”"
                         for f in red_flags)
    if urgency == "emergency":
        actions = "\n".join(f"{i}. {a}" for i, a in enumerate(safety_actions, 1))
        st.error(f"### EMERGENCY\n{actions}\n\n**Why:**\n{evidence}", icon=":material/emergency:")
    elif urgency == "urgent":
        body = "\n".join(f"- {a}" for a in safety_actions)
        st.warning(f"### Urgent: assess today or within days\n{body}\n\n**Why:**\n{evidence}",
                   icon=":material/warning:")
    else:
        st.info("**Routine**: no red flags found in the presentation or the screening answers.",
                icon=":material/check_circle:")


def describe(name: str, r: dict) -> str:
    parts = []
    if "score" in r:
        parts.append(f"score {r['score']:g}")
    if r.get("band"):
        parts.append(r["band"])
    if "positive" in r:
        parts.append("positive" if r["positive"] else "negative")
    if r.get("risk"):
        parts.append(f"risk {r['risk']}")
    if r.get("acute"):
        parts.append("acute")
    if r.get("flags"):
        parts.append("flags: " + ", ".join(r["flags"]))
    return f"**{INSTRUMENT_NAMES.get(name, name)}**: " + ", ".join(parts)


def instruments(results: dict, errors: dict) -> None:
    if not results and not errors:
        return
    st.markdown("#### Screening results")
    for name, r in results.items():
        st.markdown("- " + describe(name, r))
    for name, message in errors.items():
        st.error(f"{INSTRUMENT_NAMES.get(name, name)} could not be scored: {message}")


def link_citations(answer: str) -> str:
    """`[2]` → `[2]` in bold so markers stand out; the numbered expanders below carry the sources."""
    return re.sub(r"\[(\d+)\]", r"**[\1]**", answer)


def citations(store, cites: list[dict], key: str) -> None:
    """One expander per citation: the passage, its document, section and page, and the original file."""
    if not cites:
        return
    st.markdown("#### Sources")
    for c in cites:
        where = c.get("section") or ""
        page = f", page {c['page']}" if c.get("page") else ""
        with st.expander(f"[{c['n']}] {c['title']}" + (f" — {where}" if where else "") + page):
            st.markdown("> " + c["text"].replace("\n", "\n> "))
            st.caption(f"Document `{c['doc_id']}` version {c.get('version') or '?'} · topic {c.get('topic')} · "
                       f"section {where or '(document start)'}{page} · source: {c.get('source') or 'uploaded'}")
            try:
                name, data = store.original(c["doc_id"])
            except (DocumentNotFoundError, OSError):
                st.caption("This document has since been removed from the library.")
            else:
                st.download_button("Open source document", data, file_name=name, key=f"{key}-doc-{c['n']}",
                                   icon=":material/description:")


def answer(res: dict) -> None:
    """The verified answer, with a note when it is not the model's own draft or is an abstention."""
    verification = res.get("verification") or {}
    if verification.get("fallback_used"):
        st.caption("The model's draft failed the citation checks "
                   f"({verification.get('reason') or 'see the audit'}); these are the guideline statements "
                   "themselves.")
    elif verification.get("abstained"):
        st.caption("The model found no direct answer in the retrieved excerpts; the closest guideline "
                   "statements follow its reply.")
    st.markdown(link_citations(res["answer"]))


def result(store, res: dict, key: str) -> None:
    """A finished consult as the clinician sees it (used when a page is redrawn and in the history)."""
    urgency_banner(res["urgency"], res["red_flags"], res.get("safety_actions") or [])
    instruments(res["instruments"], res.get("instrument_errors") or {})
    st.markdown("#### Answer")
    answer(res)
    citations(store, res["citations"], key)
