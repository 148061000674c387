"""Discord settings: off without a bot token; with one, the application id and public key are required and checked."""

from __future__ import annotations

import pytest

from noema.config import ConfigError, load_settings

TOKEN = "MTEwMDAw.GbotToken.secret-part-0123456789"
KEY = "ab" * 32
ON = {
    "NOEMA_DISCORD_BOT_TOKEN": TOKEN,
    "NOEMA_DISCORD_APPLICATION_ID": "1100000000000000001",
    "NOEMA_DISCORD_PUBLIC_KEY": KEY,
}


def test_discord_is_off_by_default_and_on_with_a_bot_token() -> None:
    assert load_settings({}).discord_enabled is False
    s = load_settings({**ON, "NOEMA_DISCORD_GUILD_IDS": " 42, 43,42 "})
    assert s.discord_enabled and s.discord_guilds == ("42", "43")
    assert s.discord_api_base_url == "https://discord.com/api/v10" and s.discord_public_key == KEY
    assert TOKEN not in repr(s)


@pytest.mark.parametrize("missing", ["NOEMA_DISCORD_APPLICATION_ID", "NOEMA_DISCORD_PUBLIC_KEY"])
def test_a_bot_token_without_the_application_id_or_public_key_stops_start_up_naming_it(missing: str) -> None:
    env = {k: v for k, v in ON.items() if k != missing}
    with pytest.raises(ConfigError, match=missing) as info:
        load_settings(env)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOEMA_DISCORD_APPLICATION_ID", "my-app"),
        ("NOEMA_DISCORD_PUBLIC_KEY", "ab" * 31),
        ("NOEMA_DISCORD_PUBLIC_KEY", "zz" * 32),
        ("NOEMA_DISCORD_BOT_TOKEN", "has spaces in it"),
        ("NOEMA_DISCORD_API_BASE_URL", "discord.com/api"),
        ("NOEMA_DISCORD_GUILD_IDS", "42,general"),
    ],
)
def test_malformed_discord_settings_stop_start_up_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        load_settings({**ON, name: value})
    assert TOKEN not in str(info.value)
