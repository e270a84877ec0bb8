"""Gate for the actions that change models (train, activate, delete)."""

from __future__ import annotations

import streamlit as st

from fmnist_core.security import AdminPolicy, admin_policy, model_download_open, password_matches

SESSION_FLAG = "admin_unlocked"


def current_policy() -> AdminPolicy:
    """The admin policy, taking a password from .streamlit/secrets.toml when one is set there."""
    secret = None
    try:
        secret = st.secrets.get("admin_password")
    except Exception:  # no secrets file at all is the normal case
        secret = None
    return admin_policy(secret)


def admin_unlocked() -> bool:
    """True when this session may perform admin actions already (open deployment or unlocked), drawing nothing."""
    return current_policy().mode == "open" or bool(st.session_state.get(SESSION_FLAG))


def admin_allowed(action: str, key: str) -> bool:
    """True when this session may perform the action; otherwise shows why or a password box."""
    if admin_unlocked():
        return True
    policy = current_policy()
    if policy.mode == "disabled":
        st.info(f"{action} is turned off in this deployment (FMNIST_DISABLE_ADMIN).")
        return False
    with st.form(key=f"unlock_{key}", border=True):
        st.caption(f"{action} needs the admin password.")
        given = st.text_input("Admin password", type="password", key=f"password_{key}")
        if st.form_submit_button("Unlock", key=f"unlock_button_{key}"):
            if password_matches(given, policy):
                st.session_state[SESSION_FLAG] = True
                st.rerun()
            else:
                st.error("Wrong password.")
    return False


def model_download_allowed(key: str) -> bool:
    """True when this session may download a model: open by configuration, else behind the admin gate."""
    secret = None
    try:
        secret = st.secrets.get("allow_model_download")
    except Exception:  # no secrets file
        secret = None
    return model_download_open(secret) or admin_allowed("Downloading a model", key=key)
