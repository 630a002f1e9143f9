"""claude-sync: end-to-end encrypted, incremental sync of a Claude Code environment."""

__version__ = "0.2.0"
