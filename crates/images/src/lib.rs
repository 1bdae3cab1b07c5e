//! capsa's image store: content-addressed blobs, image records and tags in
//! SQLite, layers unpacked once into overlay snapshots keyed by chain ID,
//! docker-archive and OCI-layout archives, and the conversion of an image
//! config into an OCI runtime config.

pub mod changes;
pub mod commit;
pub mod db;
pub mod digest;
pub mod error;
pub mod export;
pub mod import;
pub mod layer;
pub mod load;
pub mod manifest;
pub mod reference;
pub mod rootfs;
pub mod runtime_config;
pub mod save;
pub mod store;
mod sys;
pub mod time;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub use store::Store;
