//! ztps-agent: will own the CLI, the config schema, `boot`, `daemon`, `status`,
//! logging, signals and the reconcile loop.
