//! Test support: one local stack per test binary (emulator + HTTP API on free
//! ports), and a small client that talks to it like an app would. Tests stay
//! isolated by registering their own users.
//!
//! Split by concern: [`stack`] (start, parameters, tokens), [`aging`]
//! (items made old for the cleanup tests), [`client`]
//! (the app-like client), [`inspection`] (what the emulator holds),
//! [`http_s3`] (presigned requests), [`samples`] (`events/` through a
//! function), [`fixtures`] (bytes, media, forms). Everything is re-exported
//! here, so tests name `assetbox_e2e::…` whatever file it lives in.

pub mod aging;
pub mod client;
pub mod fixtures;
pub mod http_s3;
pub mod inspection;
pub mod samples;
pub mod stack;
pub mod tools;

pub use aging::*;
pub use client::*;
pub use fixtures::*;
pub use http_s3::*;
pub use samples::*;
pub use stack::*;
