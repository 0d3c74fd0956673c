//! Secret store backends for syncret.
#![forbid(unsafe_code)]
