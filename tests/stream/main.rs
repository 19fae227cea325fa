//! The stream layer (`src/stream`, TLS aside): `IoStream`'s read and write rules,
//! `read_until_regex`, and the `futures-io` traits. One test binary; each file is a
//! module.

#[path = "../common/mod.rs"]
mod common;

mod futures_io;
mod iostream;
mod read_until_regex;
