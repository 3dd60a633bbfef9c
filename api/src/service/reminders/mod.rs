//! Reminders (SMS): what is queued when (the renewal scan), templates per occasion, per-number
//! limits and quiet hours, and the dispatcher that sends the outbox exactly once.

pub mod dispatch;
pub mod limits;
pub mod messages;
pub mod receipts;
pub mod schedule;
pub mod templates;
