//! Talking to EOS: will own the eAPI JSON-RPC client, the FastCli runner and the
//! mapping between EOS and kernel interface names.
