//! Black-box HTTP tests: a real server on a random port, a real SQLite file, a real storage
//! directory, real HTTP. One binary; each module is one area of the API.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should panic right there

mod helpers;

mod auth;
mod connections;
mod contract;
mod control;
mod cors;
mod dashboard;
mod disk;
mod errors;
mod hosts;
mod jobs;
mod leftovers;
mod limits;
mod meta;
mod packaging;
mod render;
mod uploads;
mod webhooks;
mod workers;
