//! Reminders (SMS): templates per occasion, per-number limits and quiet hours, and the
//! dispatcher that sends the outbox exactly once.

pub mod dispatch;
pub mod limits;
pub mod messages;
pub mod templates;
