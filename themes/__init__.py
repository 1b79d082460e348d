"""The console's look: Textual ``Theme`` objects and the TCSS that lays out the panes.

Themes are plain data registered by the App on mount (oterm's model); nothing here imports the
node runtime. The user's choice is persisted by ``console.settings``.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

#: The stylesheet of the main screen and its modals.
TCSS_PATH: Path = Path(__file__).with_name("rnet.tcss")

RNET_DARK = Theme(
    name="rnet-dark",
    primary="#5FA8D3",
    secondary="#8FBCBB",
    accent="#E0A458",
    warning="#E0A458",
    error="#E5534B",
    success="#57AB5A",
    foreground="#D8DEE9",
    background="#14181F",
    surface="#1B2029",
    panel="#232A36",
    dark=True,
    variables={
        "footer-key-foreground": "#E0A458",
        "input-selection-background": "#5FA8D3 35%",
    },
)

RNET_LIGHT = Theme(
    name="rnet-light",
    primary="#1F6FA8",
    secondary="#3B7A78",
    accent="#B5651D",
    warning="#B5651D",
    error="#C0392B",
    success="#2E7D32",
    foreground="#1E2430",
    background="#F4F5F7",
    surface="#FFFFFF",
    panel="#E3E7ED",
    dark=False,
    variables={
        "footer-key-foreground": "#B5651D",
        "input-selection-background": "#1F6FA8 25%",
    },
)

#: Every theme the console offers, in the order ``t`` cycles through them.
THEMES: tuple[Theme, ...] = (RNET_DARK, RNET_LIGHT)
DEFAULT_THEME: str = RNET_DARK.name


def theme_names() -> list[str]:
    """Names of the console's own themes, in cycling order."""
    return [theme.name for theme in THEMES]


def next_theme(current: str) -> str:
    """The theme after ``current`` in cycling order (the first one if ``current`` is unknown)."""
    names = theme_names()
    if current not in names:
        return names[0]
    return names[(names.index(current) + 1) % len(names)]
