//! The pure sync core: from an ExternalSecret, its stores' values and the existing Secret to the desired
//! Secret and status. No I/O here; the controller gathers inputs and applies outputs.
pub mod decode;
pub mod deletion;
pub mod dependencies;
pub mod desired;
pub mod error;
pub mod fetch;
pub mod hash;
pub mod keys;
pub mod lease;
pub mod manifest;
pub mod refresh;
pub mod rewrite;
pub mod secret;
pub mod status;
