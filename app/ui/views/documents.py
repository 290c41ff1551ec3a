"""Documents (admin): upload guidelines, see what is indexed, delete, re-index."""

import streamlit as st

from app.ui import auth_forms, session
from app.ui import services as svc
from retrieval.errors import DocumentNotFoundError
from retrieval.loaders import SUPPORTED_SUFFIXES
from retrieval.topics import TOPICS

services = svc.get()
user = session.require_admin(services, auth_forms.require_user(services), "documents")
store = services.store

st.title("Guideline documents")

st.subheader("Upload")
with st.form("upload", clear_on_submit=True):
    files = st.file_uploader("Guideline files", accept_multiple_files=True,
                             type=[s.lstrip(".") for s in SUPPORTED_SUFFIXES])
    topic = st.selectbox("Topic", ["from the document"] + list(TOPICS), help="Overrides the document's own topic "
                         "(front matter); documents without one are filed under 'general'.")
    submitted = st.form_submit_button("Ingest", type="primary", icon=":material/upload:")

if submitted:
    if not files:
        st.error("Choose at least one file.")
    else:
        bar = st.progress(0.0, text=f"0 of {len(files)} files")
        results = []
        for i, f in enumerate(files):
            bar.progress(i / len(files), text=f"Ingesting {f.name} ({i + 1} of {len(files)})")
            report = store.ingest_files([(f.name, f.getvalue())], None if topic == "from the document" else topic)
            for o in report.outcomes:
                services.audit.record(user.username, "document.upload", target=o.doc_id or o.name,
                                      outcome="failed" if o.status == "failed" else "ok",
                                      detail={"file": o.name, "status": o.status, "version": o.version,
                                              "chunks": o.chunks, "error": o.error})
                results.append(o)
        bar.progress(1.0, text=f"{len(files)} of {len(files)} files done")
        for o in results:
            if o.status == "failed":
                st.error(f"**{o.name}** was not ingested: {o.error}")
            elif o.status == "unchanged":
                st.info(f"**{o.name}**: unchanged (same content as {o.doc_id} v{o.version})")
            else:
                st.success(f"**{o.name}**: {o.status} as `{o.doc_id}` v{o.version}, {o.chunks} chunks")

st.subheader("Library")
docs = store.documents()
st.caption(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks, index generation {store.generation}")
st.dataframe([{"doc_id": d.doc_id, "title": d.title, "topic": d.topic, "version": d.version, "chunks": d.chunks,
               "file": d.file_name, "ingested": d.ingested_at[:16].replace("T", " ")} for d in docs],
             hide_index=True, width="stretch")

c1, c2 = st.columns(2)
with c1, st.form("delete"):
    doc_id = st.selectbox("Delete a document", [d.doc_id for d in docs], index=None)
    confirm = st.checkbox("Yes, remove it from search")
    if st.form_submit_button("Delete", icon=":material/delete:"):
        if doc_id is None or not confirm:
            st.error("Choose a document and tick the confirmation.")
        else:
            try:
                generation = store.delete(doc_id)
            except DocumentNotFoundError as e:
                st.error(str(e))
            else:
                services.audit.record(user.username, "document.delete", target=doc_id,
                                      detail={"generation": generation})
                st.success(f"Deleted {doc_id}.")
                st.rerun()
with c2:
    st.write("Re-index rebuilds every search index from the stored chunks (searches keep working meanwhile).")
    reembed = st.checkbox("Also recompute the embeddings (after changing the embedding model)")
    if st.button("Re-index", icon=":material/refresh:"):
        with st.spinner("Re-indexing…"):
            generation = store.rebuild(reembed=reembed)
        services.audit.record(user.username, "document.reindex", detail={"generation": generation,
                                                                         "reembed": reembed})
        st.success(f"Re-indexed: generation {generation}.")
