//! The web layer (`src/web`): JSON, output transforms, static URLs, templates, the
//! request-handler toolbox, uploads, the code of `docs/coming-from-tornado.md`, and the
//! web examples (`hello_web`, `web_app`, `dashboard`) held to their contracts from
//! outside. One test binary; each file is a module.

#[path = "../common/mod.rs"]
mod common;

mod dashboard_example;
mod hello_web_example;
mod json;
mod output;
mod static_url;
mod templates;
mod toolbox;
mod toolbox_glue;
mod tornado_gaps;
mod uploads;
mod web_app_example;
