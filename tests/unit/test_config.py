"""Configuration: defaults work; a bad or unknown value stops start-up naming the variable."""

from __future__ import annotations

import pytest

from noema.config import BackendKind, ConfigError, load_settings


def test_defaults_give_sqlite_on_localhost_8000() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite+aiosqlite:///./noema.db"
    assert (s.host, s.port, s.base_url, s.session_timeout_minutes) == (
        "127.0.0.1",
        8000,
        "http://127.0.0.1:8000",
        30,
    )


def test_internal_keys_parse_into_named_clients() -> None:
    s = load_settings({"NOEMA_INTERNAL_API_KEYS": "admin:aaaaaaaaaaaaaaaa1, telegram:bbbbbbbbbbbbbbbb2"})
    assert s.client_keys == {"aaaaaaaaaaaaaaaa1": "admin", "bbbbbbbbbbbbbbbb2": "telegram"}
    assert "aaaa" not in repr(s)


def test_every_configured_secret_is_listed_for_the_log_masker() -> None:
    s = load_settings(
        {
            "NOEMA_INTERNAL_API_KEYS": "admin:aaaaaaaaaaaaaaaa1,telegram:bbbbbbbbbbbbbbbb2",
            "NOEMA_METRICS_TOKEN": "metrics-token-123456",
            "NOEMA_TELEGRAM_BOT_TOKEN": "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0",
            "NOEMA_TELEGRAM_MODE": "polling",
        }
    )
    assert set(s.secret_values) == {
        "aaaaaaaaaaaaaaaa1",
        "bbbbbbbbbbbbbbbb2",
        "metrics-token-123456",
        "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0",
    }


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"NOEMA_PORT": "eighty"}, "NOEMA_PORT"),
        ({"NOEMA_PORT": "70000"}, "NOEMA_PORT"),
        ({"NOEMA_DATABASE_URL": "mysql://x"}, "NOEMA_DATABASE_URL"),
        ({"NOEMA_INTERNAL_API_KEYS": "admin"}, "NOEMA_INTERNAL_API_KEYS"),
        ({"NOEMA_INTERNAL_API_KEYS": "admin:short"}, "NOEMA_INTERNAL_API_KEYS"),
        ({"NOEMA_SESSION_TIMEOUT_MINUTES": "0"}, "NOEMA_SESSION_TIMEOUT_MINUTES"),
        ({"NOEMA_PUBLIC_URL": "not a url"}, "NOEMA_PUBLIC_URL"),
        ({"NOEMA_MEDIA_HOSTS": "cdn.example,ftp://files.example"}, "NOEMA_MEDIA_HOSTS"),
        ({"NOEMA_PROT": "8000"}, "NOEMA_PROT"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_a_key_never_appears_in_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"NOEMA_INTERNAL_API_KEYS": "admin:supersecretkey12345,telegram:supersecretkey12345"})
    assert "supersecret" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "kinds"),
    [
        ("sandbox", (BackendKind.SANDBOX,)),
        ("comfydeploy", (BackendKind.COMFYDEPLOY,)),
        ("comfyui", (BackendKind.COMFYUI,)),
        ("comfyui,comfydeploy", (BackendKind.COMFYUI, BackendKind.COMFYDEPLOY)),
        (" ComfyDeploy , comfyui ", (BackendKind.COMFYUI, BackendKind.COMFYDEPLOY)),
        ("comfyui,sandbox", (BackendKind.COMFYUI, BackendKind.SANDBOX)),
    ],
)
def test_one_backend_or_comfyui_with_a_cloud_is_accepted_own_servers_first(
    raw: str, kinds: tuple[BackendKind, ...]
) -> None:
    env = {
        "NOEMA_BACKEND": raw,
        "NOEMA_COMFYUI_SERVERS": "http://10.0.0.5:8188=A10G",
        "NOEMA_COMFYDEPLOY_API_KEY": "cd-key-123456",
    }
    assert load_settings(env).backends == kinds


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("comfyui,comfycloud", "'comfycloud'"),
        ("sandbox,comfydeploy", "comfyui,comfydeploy"),
        ("comfyui,comfyui", "twice"),
        ("", "sandbox"),
    ],
)
def test_a_bad_backend_list_stops_start_up_naming_the_bad_part(raw: str, says: str) -> None:
    env = {"NOEMA_BACKEND": raw, "NOEMA_COMFYUI_SERVERS": "http://10.0.0.5:8188=A10G"}
    with pytest.raises(ConfigError, match="NOEMA_BACKEND") as info:
        load_settings(env)
    assert says in str(info.value)


def test_both_backends_need_the_settings_of_each() -> None:
    with pytest.raises(ConfigError, match="NOEMA_COMFYUI_SERVERS"):
        load_settings({"NOEMA_BACKEND": "comfyui,sandbox"})
    with pytest.raises(ConfigError, match="NOEMA_COMFYDEPLOY_API_KEY"):
        load_settings({"NOEMA_BACKEND": "comfyui,comfydeploy", "NOEMA_COMFYUI_SERVERS": "http://h:8188=A10G"})
