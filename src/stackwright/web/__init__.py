"""The web view (`stackwright serve`): a thin layer over workflow.dashboard."""
