"""The Streamlit app: `streamlit run app/ui/main.py` (or `curbside run`). Pages call `app/` core functions."""
