//! A session's events on their way to every attached frontend. Each event gets the next
//! sequence number and joins a window kept in memory; each subscriber reads at its own pace
//! from its own place, so a slow one never holds the engine up. One that falls behind the
//! window reads what it missed back from the journal (which has every event recorded before
//! it was published): every subscriber gets every event once, in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::protocol::Event;

/// Reads the recorded events `from..to` (sequence numbers) back from the journal, in order.
pub(crate) type Replay = Arc<dyn Fn(u64, u64) -> Result<Vec<Event>, String> + Send + Sync>;

/// How many events stay in memory once the journal holds them. A subscriber further behind
/// reads from the journal.
const WINDOW: usize = 1024;

/// At most this many events are read back from the journal at once.
const REPLAY_CHUNK: u64 = 512;

/// The publishing side, and where frontends subscribe.
#[derive(Clone)]
pub struct Bus {
    shared: Arc<Shared>,
}

struct Shared {
    log: Mutex<Log>,
    /// The next sequence number, for subscribers to wait on.
    published: watch::Sender<u64>,
    replay: Option<Replay>,
}

struct Log {
    /// The events from `first` on; those before it are in the journal only.
    window: VecDeque<Arc<Event>>,
    first: u64,
    /// The sequence number of this process's first event: where subscribers start.
    start: u64,
    /// Every event below this is in the journal, and may leave memory.
    recorded_below: u64,
    /// Every publisher is gone: nothing more comes.
    closed: bool,
}

impl Log {
    fn next(&self) -> u64 {
        self.first + self.window.len() as u64
    }
}

impl Bus {
    /// A bus with no journal to read back from: every event stays in memory.
    pub fn new() -> Self {
        Self::starting_at(0, None)
    }

    /// A bus whose events are numbered from `start` (a resumed session goes on from its
    /// recorded ones), read back through `replay` once they have left memory.
    pub(crate) fn starting_at(start: u64, replay: Option<Replay>) -> Self {
        let (published, _) = watch::channel(start);
        let log = Log {
            window: VecDeque::new(),
            first: start,
            start,
            recorded_below: start,
            closed: false,
        };
        Self {
            shared: Arc::new(Shared {
                log: Mutex::new(log),
                published,
                replay,
            }),
        }
    }

    /// A subscriber that gets every event this process publishes, from the first.
    pub fn subscribe(&self) -> Subscriber {
        let at = self.log().start;
        Subscriber {
            shared: Arc::clone(&self.shared),
            published: self.shared.published.subscribe(),
            at,
            replayed: VecDeque::new(),
            lagged: 0,
        }
    }

    /// Publishes `event` as the next one. `record` records it first, under its sequence
    /// number: `Ok(true)` recorded, `Ok(false)` not (it stays in memory), `Err(error)` the
    /// journal failed, and `error`, which says so, goes out before the event. All under the
    /// log's lock, so sequence numbers, the journal and the window agree on one order.
    pub(crate) fn publish(
        &self,
        event: Event,
        record: impl FnOnce(u64, &Event) -> Result<bool, Box<Event>>,
    ) {
        let next = {
            let mut log = self.log();
            let seq = log.next();
            match record(seq, &event) {
                Ok(true) if log.recorded_below == seq => log.recorded_below = seq + 1,
                Ok(_) => {}
                Err(error) => log.window.push_back(Arc::from(error)),
            }
            log.window.push_back(Arc::new(event));
            while log.window.len() > WINDOW && log.first < log.recorded_below {
                log.window.pop_front();
                log.first += 1;
            }
            log.next()
        };
        self.shared.published.send_replace(next);
    }

    /// Nothing more comes: subscribers end once they have read everything.
    pub(crate) fn close(&self) {
        let next = {
            let mut log = self.log();
            log.closed = true;
            log.next()
        };
        self.shared.published.send_replace(next);
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.shared.lock()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A publisher cannot panic while holding the lock (it only moves values), so a
        // poisoned lock still holds a consistent log.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One frontend's reading of the events: its own place in them.
pub struct Subscriber {
    shared: Arc<Shared>,
    published: watch::Receiver<u64>,
    /// The sequence number of the next event it gets.
    at: u64,
    /// Events read back from the journal, not yet handed out.
    replayed: VecDeque<Event>,
    /// How many events it got from the journal because it fell behind.
    lagged: u64,
}

/// What the subscriber finds when it looks.
enum Found {
    Event(Arc<Event>),
    /// Left memory before it was read: to be read back from the journal, up to here.
    Behind(u64),
    Nothing,
    Closed,
}

impl Subscriber {
    /// The next event, waiting for it; `None` once the session has ended and every event
    /// was read.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            // Marks what was published so far as seen before looking, so a publish after
            // the look wakes the wait below.
            self.published.borrow_and_update();
            match self.try_next() {
                Some(Ok(event)) => return Some(event),
                Some(Err(())) => return None,
                None => {
                    if self.published.changed().await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// The next event if one is there now.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.try_next().and_then(Result::ok)
    }

    /// How many events this subscriber fell behind on and got from the journal.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }

    /// `Some(Ok)`: an event; `Some(Err)`: the end; `None`: nothing yet.
    fn try_next(&mut self) -> Option<Result<Event, ()>> {
        loop {
            if let Some(event) = self.replayed.pop_front() {
                return Some(Ok(event));
            }
            match self.look() {
                Found::Event(event) => return Some(Ok(Event::clone(&event))),
                Found::Behind(until) => self.read_back(until),
                Found::Nothing => return None,
                Found::Closed => return Some(Err(())),
            }
        }
    }

    fn look(&mut self) -> Found {
        let log = self.shared.lock();
        if self.at < log.first {
            return Found::Behind(log.first);
        }
        let offset = (self.at - log.first) as usize;
        match log.window.get(offset) {
            Some(event) => {
                self.at += 1;
                Found::Event(Arc::clone(event))
            }
            None if log.closed => Found::Closed,
            None => Found::Nothing,
        }
    }

    /// Reads the events it missed back from the journal, up to `until` (a chunk at a time).
    /// Should the journal fail to give them, that is said in their place: the subscriber
    /// goes on with what comes next, and knows what it missed.
    fn read_back(&mut self, until: u64) {
        let to = until.min(self.at + REPLAY_CHUNK);
        let wanted = (to - self.at) as usize;
        let read = match &self.shared.replay {
            Some(replay) => replay(self.at, to),
            None => Err("no journal holds them".into()),
        };
        match read {
            Ok(events) if events.len() == wanted => self.replayed.extend(events),
            Ok(events) => self.replayed.push_back(missed(
                wanted,
                &format!("the journal gave {} of them", events.len()),
            )),
            Err(why) => self.replayed.push_back(missed(wanted, &why)),
        }
        self.lagged += wanted as u64;
        self.at = to;
    }
}

fn missed(count: usize, why: &str) -> Event {
    Event::Error {
        message: format!(
            "this frontend fell behind and {count} events could not be read back: {why}"
        ),
        id: None,
    }
}

#[cfg(test)]
#[path = "bus_tests.rs"]
mod tests;
