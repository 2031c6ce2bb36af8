//! Levelled logging, shown to the user with the buildpack's id.
//!
//! Prefer these to `println!`: the host keeps them apart from raw output and
//! shows them even when stdout is truncated.

use crate::bindings::cascade::buildpack::log::{Level, log};

pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}
