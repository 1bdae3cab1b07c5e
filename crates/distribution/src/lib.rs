//! capsa's client of the OCI distribution specification (the Docker
//! Registry HTTP API v2): pulling images into the `capsa_images` store and
//! pushing them back, with the bearer-token and basic authentication that
//! Docker Hub, GHCR, Quay and private registries use, Docker's
//! `config.json` credential store and helpers, TLS with per-registry CA
//! certificates, insecure and loopback registries over plain HTTP, and
//! docker.io mirrors.

pub mod auth;
pub mod client;
pub mod config;
pub mod credentials;
pub mod error;
pub mod fetch;
mod parallel;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod transport;

pub use config::Config;
pub use error::{Error, Result};
pub use platform::Platform;
pub use progress::{Event, LayerState, Progress};
pub use pull::{PullOptions, PullPolicy, Pulled, ensure_image, pull};
pub use push::{PushOptions, Pushed, push};
pub use transport::TlsVerify;
