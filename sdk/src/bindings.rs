//! Generated bindings for `wit/`; private so authors never see them.

#![allow(clippy::all, clippy::pedantic)]

wit_bindgen::generate!({
    path: "wit",
    world: "cascade:buildpack/buildpack",
    pub_export_macro: true,
    export_macro_name: "__cascade_export_world",
    default_bindings_module: "cascade_sdk::__private::bindings",
    runtime_path: "cascade_sdk::__private::wit_bindgen::rt",
    generate_all,
});
