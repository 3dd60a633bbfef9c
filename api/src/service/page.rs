//! Cursor pagination: small pages for phone screens, stable under inserts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Problem;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// `?cursor=&limit=` on every list.
#[derive(Debug, Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u64>,
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

impl PageQuery {
    /// The validated limit.
    pub fn limit(&self) -> Result<u64, Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Problem::invalid_field(
                "limit",
                format!("limit 应在 1 到 {MAX_LIMIT} 之间 / limit must be 1–{MAX_LIMIT}"),
            )),
        }
    }

    /// The id after which the page starts.
    pub fn after_id(&self) -> Result<Option<i64>, Problem> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("id:").and_then(|n| n.parse::<i64>().ok()))
            .map(Some)
            .ok_or_else(|| Problem::invalid_field("cursor", "无效的分页游标 / invalid cursor"))
    }
}

/// The cursor of the page after the row with this id.
pub fn cursor_after(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("id:{id}"))
}

/// Builds a page from `limit + 1` rows fetched in id order.
pub fn page_from<M>(mut rows: Vec<M>, limit: u64, id: impl Fn(&M) -> i64) -> Page<M> {
    let next_cursor = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|last| cursor_after(id(last)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}
