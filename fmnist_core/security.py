"""Who may retrain, activate and delete models: an admin policy read from the environment."""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

ADMIN_PASSWORD_ENV = "FMNIST_ADMIN_PASSWORD"
ADMIN_DISABLED_ENV = "FMNIST_DISABLE_ADMIN"


@dataclass(frozen=True)
class AdminPolicy:
    """open: anyone may change models; password: only after unlocking; disabled: nobody, from the UI."""

    mode: str
    password: str | None = None

    def __repr__(self) -> str:  # never print the password in logs or tracebacks
        return f"AdminPolicy(mode={self.mode!r})"


def admin_policy(secret_password: str | None = None) -> AdminPolicy:
    """The policy from FMNIST_DISABLE_ADMIN, then a secrets-file password, then FMNIST_ADMIN_PASSWORD."""
    if os.environ.get(ADMIN_DISABLED_ENV, "").strip().lower() in ("1", "true", "yes"):
        return AdminPolicy("disabled")
    password = secret_password or os.environ.get(ADMIN_PASSWORD_ENV)
    return AdminPolicy("password", password) if password else AdminPolicy("open")


def password_matches(given: str | None, policy: AdminPolicy) -> bool:
    """Constant-time comparison of the given password with the configured one."""
    if policy.mode != "password" or not given or policy.password is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), policy.password.encode("utf-8"))


MODEL_DOWNLOAD_ENV = "FMNIST_ALLOW_MODEL_DOWNLOAD"


def model_download_open(secret_value: object = None) -> bool:
    """True when anyone may download models (FMNIST_ALLOW_MODEL_DOWNLOAD or allow_model_download in secrets);
    otherwise a download sits behind the same admin gate as activate and delete."""
    value = secret_value if secret_value is not None else os.environ.get(MODEL_DOWNLOAD_ENV, "")
    return str(value).strip().lower() in ("1", "true", "yes")
