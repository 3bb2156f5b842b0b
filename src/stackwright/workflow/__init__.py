"""Reviewed change: saved plans, approvals, policies, environments, workspaces and CI.

Built on the operations layer; the CLI and the web UI call these functions."""
