//! Thin wrappers around the Linux system calls that `nix` does not offer
//! and that more than one capsa crate needs. Every `unsafe` block of the
//! crate is one small function per system call with a `// SAFETY:` comment.

pub mod mount_api;
