"""The long-lived objects every page uses, built once per app process (`st.cache_resource`).

Tests install their own `Services` (a temporary database, a small store, a stub model endpoint) with
`install`; the app builds them from the settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import streamlit as st

from app.accounts import AccountPolicy, Accounts
from app.audit import AuditLog
from app.consult import ConsultConfig, ConsultPipeline
from app.engine_client import EngineClient
from app.records import ConsultRecords
from app.redaction import RedactingFilter
from curbside.settings import Settings, load_settings, tuned_adapter

log = logging.getLogger("curbside.app")


@dataclass
class Services:
    settings: Settings
    audit: AuditLog
    accounts: Accounts
    records: ConsultRecords
    store: object  # retrieval.store.GuidelineStore
    pipeline: ConsultPipeline
    engine: EngineClient


_installed: Services | None = None


def install(services: Services | None) -> None:
    """Use these services instead of building them from the settings (tests; None restores the default)."""
    global _installed
    _installed = services


def build(settings: Settings, store=None, chat_model=None) -> Services:
    """Everything the app needs for one data directory; opens (and on first start seeds) the guideline store."""
    audit = AuditLog(settings.app_db)
    policy = AccountPolicy(settings.max_failed_logins, settings.lockout_minutes, settings.min_password_length)
    accounts = Accounts(settings.app_db, audit, policy)
    records = ConsultRecords(settings.app_db, audit)
    if store is None:
        from retrieval.store import open_store

        store = open_store(settings)
    adapter = settings.llm_adapter
    if adapter is None and settings.llm_base_url is None:
        # our own server (curbside run) serves the tuned adapter when there is one; another server may not
        adapter = (tuned_adapter(settings) or (None,))[0]
    config = ConsultConfig(base_url=settings.chat_base_url, model=settings.chat_model,
                           adapter=adapter, api_key=settings.api_key,
                           max_tokens=settings.consult_max_tokens, timeout_s=settings.llm_timeout_s)
    pipeline = ConsultPipeline(store, config, chat_model)
    engine = EngineClient(settings.chat_base_url, settings.api_key)
    return Services(settings, audit, accounts, records, store, pipeline, engine)


def _log_redacted() -> None:
    """Curbside's own log lines go to stderr through the PHI filter (case text never reaches a log raw)."""
    logger = logging.getLogger("curbside")
    if not any(isinstance(f, RedactingFilter) for h in logger.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@st.cache_resource(show_spinner="Opening the guideline store…")
def _from_settings() -> Services:
    _log_redacted()
    services = build(load_settings())
    services.pipeline.warm_up()
    password_file = services.accounts.ensure_first_admin(services.settings.first_admin_password_file)
    if password_file:
        log.warning("first admin account created; its password is in %s (mode 0600)", password_file)
    return services


def get() -> Services:
    return _installed or _from_settings()
