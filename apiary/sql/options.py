"""DataFusion options: checking what a node or a SQL session sets (pure logic over DataFusion's
own configuration, which validates names and values).

A node sets any option in apiary.toml's ``[datafusion]`` table. A SQL session may ``SET`` only
options that change how a query is planned or how Parquet is read (:data:`SESSION_PREFIXES`):
not runtime options such as the spill folder or the memory limit, which are the bee's.
"""

from __future__ import annotations

from collections.abc import Mapping

from datafusion import SessionConfig

from apiary.errors import ConfigError

# What SET may change in a session: the planner's choices and how Parquet is read.
SESSION_PREFIXES = ("datafusion.optimizer.", "datafusion.execution.parquet.")


def check_datafusion_settings(
    settings: Mapping[str, object], where: str = "in the datafusion table of apiary.toml"
) -> dict[str, str]:
    """``settings`` as DataFusion option strings; a ConfigError names a key DataFusion refuses
    (and says to fix it ``where`` it was set)."""
    out: dict[str, str] = {}
    config = SessionConfig()
    for key, value in settings.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            config = config.set(key, text)
        except Exception as exc:  # DataFusion says which part it refuses
            cause = " ".join(str(exc).split())
            raise ConfigError(
                f"DataFusion refuses the setting {key} = {text!r} ({cause}); fix or remove it "
                f"{where} (names as in DataFusion's configuration docs, e.g. "
                "datafusion.execution.parquet.pushdown_filters)"
            ) from None
        out[key] = text
    return out


def check_session_option(name: str, value: str) -> str:
    """``value`` for ``SET name = value`` in a SQL session, as DataFusion takes it."""
    if not name.startswith(SESSION_PREFIXES):
        raise ConfigError(
            f"SET {name}: a session may change only options starting with "
            f"{' or '.join(SESSION_PREFIXES)}; set the others for the whole node in the "
            "datafusion table of apiary.toml"
        )
    return check_datafusion_settings({name: value}, where="in SET")[name]
