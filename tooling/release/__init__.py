"""Releases: workspace members, what changed since their tags, releasing one, release notes."""
