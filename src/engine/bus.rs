//! A session's events on their way to every attached frontend. Each event gets the next
//! sequence number and joins a log kept in memory; each subscriber reads at its own pace
//! from its own place, so a slow one never holds the engine up. What every subscriber has
//! read leaves memory; past a window, what one has not read yet is spilled to the history
//! (the overflow) and read back from there when it gets to it: every subscriber gets every
//! event once, in order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::protocol::Event;

/// Keeps event `seq` in the overflow.
type Spill = Arc<dyn Fn(u64, &Event) -> Result<(), String> + Send + Sync>;

/// Reads the spilled events `from..to` back, in order.
type ReadBack = Arc<dyn Fn(u64, u64) -> Result<Vec<Event>, String> + Send + Sync>;

/// Where events a subscriber has not read yet go once the window is full, and where they
/// are read back from: the history, for a recorded session.
#[derive(Clone)]
pub(crate) struct Overflow {
    pub(crate) spill: Spill,
    pub(crate) read: ReadBack,
}

/// How many events stay in memory for a subscriber that has not read them, before they are
/// spilled.
const WINDOW: usize = 1024;

/// At most this many events are read back at once.
const READ_BACK_CHUNK: u64 = 512;

/// The publishing side, and where frontends subscribe.
#[derive(Clone)]
pub struct Bus {
    shared: Arc<Shared>,
}

struct Shared {
    log: Mutex<Log>,
    /// The next sequence number, for subscribers to wait on.
    published: watch::Sender<u64>,
    overflow: Option<Overflow>,
}

struct Log {
    /// The events from `first` on; those before it were read by everyone, or spilled.
    window: VecDeque<Arc<Event>>,
    first: u64,
    /// Each subscriber's next sequence number, by subscriber.
    readers: BTreeMap<u64, u64>,
    /// The key the next subscriber gets in `readers`.
    next_reader: u64,
    /// The overflow failed: what is not read stays in memory.
    spill_failed: bool,
    /// Every publisher is gone: nothing more comes.
    closed: bool,
}

impl Log {
    fn next(&self) -> u64 {
        self.first + self.window.len() as u64
    }

    /// Drops what every subscriber has read; past the window, spills what one has not.
    fn shrink(&mut self, overflow: Option<&Overflow>) {
        let read_by_all = self.readers.values().copied().min().unwrap_or(u64::MAX);
        while let Some(front) = self.window.front() {
            if self.first >= read_by_all {
                if self.window.len() <= WINDOW || self.spill_failed {
                    break;
                }
                let Some(overflow) = overflow else { break };
                if (overflow.spill)(self.first, front).is_err() {
                    // Kept in memory instead: nothing is lost, it only costs memory.
                    self.spill_failed = true;
                    break;
                }
            }
            self.window.pop_front();
            self.first += 1;
        }
    }
}

impl Bus {
    /// A bus whose unread events stay in memory, however many.
    pub fn new() -> Self {
        Self::starting_at(0, None)
    }

    /// A bus whose events are numbered from `start` (a resumed session goes on after its
    /// spilled ones), spilling unread events to `overflow` past the window.
    pub(crate) fn starting_at(start: u64, overflow: Option<Overflow>) -> Self {
        let (published, _) = watch::channel(start);
        let log = Log {
            window: VecDeque::new(),
            first: start,
            readers: BTreeMap::new(),
            next_reader: 0,
            spill_failed: false,
            closed: false,
        };
        Self {
            shared: Arc::new(Shared {
                log: Mutex::new(log),
                published,
                overflow,
            }),
        }
    }

    /// A subscriber that gets every event from the oldest one still held on: all of them,
    /// for one that subscribes before the session starts.
    pub fn subscribe(&self) -> Subscriber {
        let mut log = self.shared.lock();
        let (reader, at) = (log.next_reader, log.first);
        log.next_reader += 1;
        log.readers.insert(reader, at);
        Subscriber {
            shared: Arc::clone(&self.shared),
            published: self.shared.published.subscribe(),
            reader,
            at,
            read_back: VecDeque::new(),
            lagged: 0,
        }
    }

    /// Publishes `event` as the next one, after `before` if it is given (a journal that
    /// failed says so before the event it could not record).
    pub(crate) fn publish(&self, before: Option<Event>, event: Event) {
        let next = {
            let mut log = self.shared.lock();
            log.window.extend(before.map(Arc::new));
            log.window.push_back(Arc::new(event));
            log.shrink(self.shared.overflow.as_ref());
            log.next()
        };
        self.shared.published.send_replace(next);
    }

    /// Nothing more comes: subscribers end once they have read everything.
    pub(crate) fn close(&self) {
        let next = {
            let mut log = self.shared.lock();
            log.closed = true;
            log.next()
        };
        self.shared.published.send_replace(next);
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
    /// Its key among the log's readers.
    reader: u64,
    /// The sequence number of the next event it gets.
    at: u64,
    /// Events read back from the overflow, not yet handed out.
    read_back: VecDeque<Event>,
    /// How many events it fell behind on, to be read back from the overflow.
    lagged: u64,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.shared.lock().readers.remove(&self.reader);
    }
}

/// What the subscriber finds when it looks.
enum Found {
    Event(Arc<Event>),
    /// Left memory before it was read: to be read back from the overflow, up to here.
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
                // The sender lives as long as the bus, which this subscriber holds: the end
                // comes through `closed`, not from here.
                None => {
                    let _ = self.published.changed().await;
                }
            }
        }
    }

    /// The next event if one is there now.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.try_next().and_then(Result::ok)
    }

    /// How many events this subscriber fell behind on, so that they were read back from the
    /// overflow for it.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }

    /// `Some(Ok)`: an event; `Some(Err)`: the end; `None`: nothing yet.
    fn try_next(&mut self) -> Option<Result<Event, ()>> {
        loop {
            if let Some(event) = self.read_back.pop_front() {
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
        let mut log = self.shared.lock();
        if self.at < log.first {
            return Found::Behind(log.first);
        }
        let offset = (self.at - log.first) as usize;
        match log.window.get(offset).cloned() {
            Some(event) => {
                self.at += 1;
                log.readers.insert(self.reader, self.at);
                Found::Event(event)
            }
            None if log.closed => Found::Closed,
            None => Found::Nothing,
        }
    }

    /// Reads the events it missed back from the overflow, up to `until` (a chunk at a
    /// time). What the overflow cannot give is said in its place: the subscriber goes on
    /// with what comes next, and knows what it missed.
    fn read_back(&mut self, until: u64) {
        let to = until.min(self.at + READ_BACK_CHUNK);
        let wanted = (to - self.at) as usize;
        let read = match &self.shared.overflow {
            Some(overflow) => (overflow.read)(self.at, to),
            None => Err("nothing holds them".into()),
        };
        match read {
            Ok(events) => {
                let got = events.len();
                self.read_back.extend(events);
                if got < wanted {
                    let why = format!("the history gave {got} of {wanted}");
                    self.read_back.push_back(missed(wanted - got, &why));
                }
            }
            Err(why) => self.read_back.push_back(missed(wanted, &why)),
        }
        self.lagged += wanted as u64;
        self.at = to;
        self.shared.lock().readers.insert(self.reader, self.at);
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
