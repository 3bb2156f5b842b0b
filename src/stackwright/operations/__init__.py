"""Stack operations — preview, up, destroy, refresh, import, rollback — as functions
the CLI and the web UI both call. No logic lives only in those thin layers."""
