//! Nothing to build: this crate's tests (`tests/`) check that klaw's errors work with the error
//! crates applications use, `anyhow`, `eyre` and `thiserror`, without making them dependencies
//! of klaw itself.
