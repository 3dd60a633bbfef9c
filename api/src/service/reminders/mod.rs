//! Reminders (SMS): what is queued when, and how queued messages are sent.

pub mod schedule;
