//! Huzhu: the backend and JSON API of a WeChat mini-program for Chinese trade unions' workers'
//! medical mutual-aid schemes (职工医疗互助保障).

pub mod auth;
pub mod bank_file;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod error;
pub mod images;
pub mod keys;
pub mod openapi;
pub mod photos;
pub mod roster;
pub mod routes;
pub mod scope;
pub mod service;
pub mod settings;
pub mod sms;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod wechat;
pub mod workbook;
pub mod workdays;
