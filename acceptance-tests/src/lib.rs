//! Harness that drives the real terraform CLI.
