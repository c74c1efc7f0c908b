"""forge-app: code-scanning results reviewed on the forge, new findings only."""

__version__ = "0.1.0"
