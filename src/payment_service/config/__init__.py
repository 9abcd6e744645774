"""Configuration: the frozen `Settings` (`config.settings`); imports nothing of ours."""
