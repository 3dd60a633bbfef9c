//! Huzhu: the backend and JSON API of a WeChat mini-program for Chinese trade unions' workers'
//! medical mutual-aid schemes (职工医疗互助保障).

pub mod auth;
pub mod cli;
pub mod db;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod error;
pub mod formats;
pub mod integrations;
pub mod memory;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod service;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod wire;
