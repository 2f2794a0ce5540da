//! Test support for end-to-end tests in network namespaces: will own the namespace
//! harness, `eos-sim` and the fake `FastCli`.
