//! A buildpack whose component imports `alien:probe/phone-home`, which no
//! Cascade host offers: the host must refuse it at load, by name, before
//! running anything.

use cascade_sdk::{BuildContext, BuildResult, Buildpack, DetectContext, DetectResult, Result};

mod alien {
    #![allow(clippy::all, clippy::pedantic)]
    wit_bindgen::generate!({
        inline: "package alien:probe; interface phone-home { call: func(); } world alien { import phone-home; }",
    });
}

#[derive(Default)]
pub struct Alien;

impl Buildpack for Alien {
    fn detect(&self, _: &DetectContext) -> Result<DetectResult> {
        alien::alien::probe::phone_home::call();
        Ok(DetectResult::pass())
    }

    fn build(&self, _: &BuildContext) -> Result<BuildResult> {
        Ok(BuildResult::new())
    }
}

cascade_sdk::export_buildpack!(Alien);
