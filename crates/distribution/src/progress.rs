//! What pulls and pushes report while they run, in Docker's words, for a
//! front end to show (progress bars on a terminal, plain lines otherwise).

use std::time::Duration;

/// A layer's state, as Docker names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerState {
    /// Pull: the layer is to be downloaded.
    PullingFsLayer,
    /// Waiting for a free download or upload slot.
    Waiting,
    /// Pull: bytes are arriving (see [`Event::Bytes`]); they are verified
    /// and unpacked as they arrive.
    Downloading,
    /// The connection broke; a new attempt starts after the wait.
    Retrying {
        /// The attempt number.
        attempt: u32,
        /// The wait before it.
        wait: Duration,
    },
    /// Pull: the whole blob was read and its digest checked.
    VerifyingChecksum,
    /// Pull: the blob is complete.
    DownloadComplete,
    /// Pull: the layer is unpacked and in the store.
    PullComplete,
    /// Pull: the store already has the layer.
    AlreadyExists,
    /// Push: the layer is about to be checked.
    Preparing,
    /// Push: bytes are being sent (see [`Event::Bytes`]).
    Pushing,
    /// Push: the blob was uploaded.
    Pushed,
    /// Push: the registry already has the blob.
    LayerAlreadyExists,
    /// Push: the registry mounted the blob from another of its repositories.
    MountedFrom(String),
}

impl LayerState {
    /// Docker's text for the state.
    pub fn text(&self) -> String {
        match self {
            LayerState::PullingFsLayer => "Pulling fs layer".into(),
            LayerState::Waiting => "Waiting".into(),
            LayerState::Downloading => "Downloading".into(),
            LayerState::Retrying { wait, .. } => {
                let n = wait.as_secs_f64().ceil() as u64;
                format!("Retrying in {n} second{}", if n == 1 { "" } else { "s" })
            }
            LayerState::VerifyingChecksum => "Verifying Checksum".into(),
            LayerState::DownloadComplete => "Download complete".into(),
            LayerState::PullComplete => "Pull complete".into(),
            LayerState::AlreadyExists => "Already exists".into(),
            LayerState::Preparing => "Preparing".into(),
            LayerState::Pushing => "Pushing".into(),
            LayerState::Pushed => "Pushed".into(),
            LayerState::LayerAlreadyExists => "Layer already exists".into(),
            LayerState::MountedFrom(repo) => format!("Mounted from {repo}"),
        }
    }

    /// Whether the state comes with byte counts (a progress bar).
    pub fn has_bytes(&self) -> bool {
        matches!(self, LayerState::Downloading | LayerState::Pushing)
    }
}

/// One report.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// A line about the whole operation: `latest: Pulling from library/alpine`,
    /// `Digest: sha256:...`, `Status: Downloaded newer image for alpine:latest`.
    Status(&'a str),
    /// A warning for the user (Docker prints them on stderr).
    Warning(&'a str),
    /// A layer (its short blob digest) changed state.
    Layer {
        /// The first 12 hex digits of the blob digest.
        id: &'a str,
        /// Its new state.
        state: LayerState,
    },
    /// Bytes of a layer transferred so far, of `total`.
    Bytes {
        /// The layer's id.
        id: &'a str,
        /// Bytes so far.
        current: u64,
        /// The layer's size.
        total: u64,
    },
}

/// Receives the reports of a pull or push (from several threads).
pub trait Progress: Sync {
    /// Handles one report.
    fn report(&self, event: Event<'_>);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn report(&self, _: Event<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_like_dockers() {
        let r = |ms| LayerState::Retrying {
            attempt: 1,
            wait: Duration::from_millis(ms),
        };
        assert_eq!(r(500).text(), "Retrying in 1 second");
        assert_eq!(r(2000).text(), "Retrying in 2 seconds");
        assert_eq!(
            LayerState::MountedFrom("library/x".into()).text(),
            "Mounted from library/x"
        );
        assert!(LayerState::Downloading.has_bytes() && !LayerState::PullComplete.has_bytes());
    }
}
