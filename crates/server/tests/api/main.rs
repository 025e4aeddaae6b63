//! Black-box HTTP tests: a real server on a random port, a real SQLite file, a real storage
//! directory, real HTTP. One binary; each module is one area of the API.

mod helpers;

mod auth;
mod jobs;
mod meta;
mod render;
mod uploads;
