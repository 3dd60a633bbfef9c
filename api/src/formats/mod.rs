//! Bytes in and out: the file formats the service reads and writes — uploaded photos, Excel
//! workbooks, the banks' result files, union rosters.
//!
//! Pure transformations of bytes into values and back: nothing here touches the database, the
//! network, the clock or the disk, so every format is tested with in-memory fixtures. Format code
//! may use `domain/` value types; it never uses `service/`, `routes/` or actix.

pub mod bank_file;
pub mod photos;
pub mod roster;
pub mod settlement;
pub mod workbook;
