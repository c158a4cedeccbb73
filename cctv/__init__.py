"""Shared contracts, configuration and plumbing of the CCTV incident-flagging pipeline."""

__version__ = "0.1.0"
