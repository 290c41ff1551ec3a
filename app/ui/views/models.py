"""Models (admin): engine health and load, the LoRA adapters it serves, and the tuned adapter's model card."""

import time

import streamlit as st

from app.engine_client import EngineUnavailable, tokens_per_second
from app.ui import auth_forms, session
from app.ui import services as svc
from tuning.registry import DEFAULT_ADAPTER_NAME, adapters_dir, read_card

services = svc.get()
user = session.require_admin(services, auth_forms.require_user(services), "models")
engine = services.engine

st.title("Models")
ready, said = engine.health()
(st.success if ready else st.error)(f"Inference server {engine.root}: {said}")
st.caption(f"Consults use model **{services.pipeline.config.model}**"
           + (f" with adapter **{services.pipeline.config.adapter}**" if services.pipeline.config.adapter else ""))

readings = st.session_state.setdefault("engine_readings", [])
try:
    snap = engine.snapshot()
except EngineUnavailable as e:
    st.warning(str(e))
else:
    readings.append(snap)
    del readings[:-120]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Running requests", f"{snap.running:g}")
    c2.metric("Waiting requests", f"{snap.waiting:g}")
    c3.metric("KV-cache usage", f"{snap.kv_cache_usage:.0%}")
    rate = tokens_per_second(readings[-2], snap) if len(readings) > 1 else 0.0
    c4.metric("Generated tokens/s", f"{rate:.1f}")
    if snap.info:
        st.caption(" · ".join(f"{k}: {v}" for k, v in snap.info.items()))
    if len(readings) > 1:
        st.line_chart({"tokens/s": [tokens_per_second(a, b) for a, b in zip(readings[:-1], readings[1:], strict=True)]},
                      x_label="reading", y_label="generated tokens/s")
    st.button("Refresh", icon=":material/refresh:")

st.subheader("Adapters")
try:
    served = engine.models()
except EngineUnavailable as e:
    st.warning(str(e))
    served = []
adapters = [m for m in served if m.parent]
if adapters:
    for m in adapters:
        c1, c2 = st.columns([4, 1])
        c1.write(f"**{m.id}** (on {m.parent}) from `{m.root}`")
        if c2.button("Unload", key=f"unload-{m.id}"):
            try:
                engine.unload_adapter(m.id)
            except EngineUnavailable as e:
                services.audit.record(user.username, "adapter.unload", target=m.id, outcome="failed",
                                      detail={"error": str(e)})
                st.error(str(e))
            else:
                services.audit.record(user.username, "adapter.unload", target=m.id)
                st.rerun()
else:
    st.caption("No adapters loaded.")

with st.form("load_adapter", clear_on_submit=True):
    name = st.text_input("Adapter name", help="Requests name it as their model.")
    path = st.text_input("Adapter directory (PEFT format) on the server", value=str(
        services.settings.data_dir.resolve() / "adapters"))
    if st.form_submit_button("Load adapter", icon=":material/upload:"):
        try:
            t0 = time.perf_counter()
            engine.load_adapter(name.strip(), path.strip())
        except EngineUnavailable as e:
            services.audit.record(user.username, "adapter.load", target=name, outcome="failed",
                                  detail={"path": path, "error": str(e)})
            st.error(str(e))
        else:
            services.audit.record(user.username, "adapter.load", target=name, detail={"path": path})
            st.success(f"Loaded {name} in {time.perf_counter() - t0:.1f} s.")

st.subheader("Tuned adapter")
tuned_dir = adapters_dir(services.settings.data_dir) / DEFAULT_ADAPTER_NAME
card = read_card(tuned_dir)
if card is None:
    st.caption(f"None yet: `make tune` (curbside tune select) writes one to `{tuned_dir}`.")
else:
    chosen = card.get("chosen") or {}
    in_use = services.pipeline.config.adapter == DEFAULT_ADAPTER_NAME
    st.write(f"**{card.get('name')}**: {chosen.get('name', 'nothing chosen')}, trained "
             f"{str(card.get('created', ''))[:10]} on {(card.get('base_model') or {}).get('name')}; "
             + ("consults use it." if in_use else "consults do not use it (the base model answers)."))
    if not card.get("beats_base_on_validation"):
        st.caption("Its card says it does not beat the base model on validation, so it is not the default.")
    rows = [{"candidate": c["name"], "status": c["status"],
             "validation score": c.get("score"),
             "citation validity": (c.get("validation") or {}).get("citation_validity"),
             "key-fact recall": (c.get("validation") or {}).get("key_fact_recall"),
             "train min": round(c["train_seconds"] / 60, 1) if c.get("train_seconds") else None,
             "note": c.get("reason", "")}
            for c in card.get("candidates", [])]
    st.dataframe(rows, hide_index=True)
    test = card.get("test") or {}
    base, tuned = test.get("base") or {}, test.get("adapter") or {}
    st.dataframe([{"held-out test": key.replace("_", " "), "base model": base.get(key), "adapter": tuned.get(key)}
                  for key in ("citation_validity", "key_fact_recall", "format_compliance", "abstention_accuracy",
                              "perplexity")], hide_index=True)
