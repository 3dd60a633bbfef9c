//! End-to-end tests: the real server on port 0, spoken to over HTTP, each test on its own
//! database — every test in `on_both_backends!` runs on SQLite and on PostgreSQL + Redis.

mod admin;
mod audit;
mod auth;
mod claim_figures;
mod claims;
mod config;
mod enrolment;
mod four_eyes;
mod health;
mod migrations;
mod offer_life;
mod offer_review;
mod offers;
mod offers_xinkang;
mod openapi;
mod payouts;
mod period_money;
mod period_property;
mod pool;
mod reminder_schedule;
mod reminders;
mod scope;
mod simulations;
mod storage;
mod wujin;
