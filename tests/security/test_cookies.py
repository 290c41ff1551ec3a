"""Cookies: none of ours lacks HttpOnly, except Streamlit's XSRF token, which its JavaScript must read.

Streamlit keeps a session in its websocket, not in a cookie: signing in sets no cookie at all (the signed-in user
lives in that session's `st.session_state`, on the server). The only cookie the app sets is `_streamlit_xsrf`, the
double-submit token that Streamlit's front end reads and echoes on uploads; HttpOnly would break uploads, so it is
not HttpOnly by design (it carries no session and grants nothing on its own). The inference server sets none.
"""

from __future__ import annotations

import httpx

XSRF = "_streamlit_xsrf"


def test_the_browser_holds_no_cookie_without_httponly_but_streamlits_xsrf_token(product):
    names = {c["name"] for c in product.cookies}
    assert XSRF in names, names  # XSRF protection is on (.streamlit/config.toml)
    for cookie in product.cookies:
        if cookie["name"] == XSRF:
            assert not cookie["httpOnly"] and cookie["sameSite"] in ("Strict", "Lax"), cookie
        else:
            assert cookie["httpOnly"], f"{cookie['name']} is readable from JavaScript"


def test_every_set_cookie_header_seen_in_a_whole_session_is_httponly_or_the_xsrf_token(product):
    assert product.set_cookies, "the session saw no Set-Cookie at all (XSRF protection off?)"
    for url, header in product.set_cookies:
        name = header.split("=", 1)[0].strip()
        flags = {part.strip().lower() for part in header.split(";")[1:]}
        assert name == XSRF or "httponly" in flags, (url, name)


def test_signing_in_sets_no_session_cookie(product):
    assert {c["name"] for c in product.cookies} == {XSRF}


def test_the_inference_server_sets_no_cookie(product):
    key = {"Authorization": f"Bearer {product.api_key}"}
    responses = [httpx.get(product.server_url + path, headers=key, timeout=30)
                 for path in ("/health/live", "/health/ready", "/metrics", "/v1/models")]
    responses.append(httpx.get(product.server_url + "/v1/models", timeout=30))  # a 401
    responses.append(httpx.post(product.server_url + "/v1/embeddings", headers=key, timeout=60,
                                json={"model": "all-minilm-l6-v2", "input": "low mood"}))
    for r in responses:
        assert "set-cookie" not in r.headers, (r.url, r.headers["set-cookie"])
