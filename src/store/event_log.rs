//! Events a frontend fell behind on, numbered as they were published: the engine's bus
//! spills them here once its window is full, and the frontend reads them back when it gets
//! to them.

use rusqlite::params;

use super::{Result, Store, StoreError};
use crate::protocol::Event;

impl Store {
    /// Keeps `event`, event `seq` of `session`, for a frontend to read back.
    pub(crate) fn spill_event(&self, session: &str, seq: u64, event: &Event) -> Result<()> {
        let json = serde_json::to_string(event)
            .map_err(|err| StoreError(format!("an event cannot be written down: {err}")))?;
        self.conn.execute(
            "INSERT INTO events (session, seq, event) VALUES (?1, ?2, ?3)",
            params![session, seq as i64, json],
        )?;
        Ok(())
    }

    /// The sequence number `session`'s next event gets: a resumed session goes on after the
    /// ones it spilled.
    pub(crate) fn next_event_seq(&self, session: &str) -> Result<u64> {
        let next: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(seq) + 1, 0) FROM events WHERE session = ?1",
            params![session],
            |row| row.get(0),
        )?;
        Ok(next.max(0) as u64)
    }

    /// `session`'s spilled events `from..to`, in order.
    pub(crate) fn events(&self, session: &str, from: u64, to: u64) -> Result<Vec<Event>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT event FROM events WHERE session = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
        )?;
        let rows = statement.query_map(params![session, from as i64, to as i64], |row| {
            row.get::<_, String>(0)
        })?;
        let mut events = Vec::new();
        for json in rows {
            let json = json?;
            let event = serde_json::from_str(&json).map_err(|err| {
                StoreError(format!("a recorded event cannot be read back: {err}"))
            })?;
            events.push(event);
        }
        Ok(events)
    }
}
