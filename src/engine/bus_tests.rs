//! The bus with a journal kept in a list: every subscriber gets every event once, in order,
//! whether it keeps up, falls behind the window, or the journal fails.

use std::sync::{Arc, Mutex};

use super::*;
use crate::engine::{Events, Journal};

/// A journal that keeps events in a list, failing from `fail_at` on when set.
#[derive(Clone, Default)]
struct Kept {
    events: Arc<Mutex<Vec<(u64, Event)>>>,
    fail_at: Option<u64>,
}

impl Kept {
    fn journal(&self) -> Journal {
        let (kept, fail_at) = (self.events.clone(), self.fail_at);
        Arc::new(move |seq, event: &Event| {
            if fail_at.is_some_and(|at| seq >= at) {
                return Err("the disk is full".into());
            }
            kept.lock().unwrap().push((seq, event.clone()));
            Ok(())
        })
    }

    fn replay(&self) -> Replay {
        let kept = self.events.clone();
        Arc::new(move |from, to| {
            let kept = kept.lock().unwrap();
            Ok(kept
                .iter()
                .filter(|(seq, _)| (from..to).contains(seq))
                .map(|(_, event)| event.clone())
                .collect())
        })
    }
}

fn notice(n: usize) -> Event {
    Event::Notice {
        message: format!("event {n}"),
    }
}

/// Everything the subscriber gets until the end.
async fn read_all(subscriber: &mut Subscriber) -> Vec<Event> {
    let mut seen = Vec::new();
    while let Some(event) = subscriber.recv().await {
        seen.push(event);
    }
    seen
}

#[tokio::test]
async fn two_subscribers_get_the_same_events_and_the_one_that_lagged_is_told() {
    let kept = Kept::default();
    let bus = Bus::starting_at(0, Some(kept.replay()));
    let events = Events::new(bus.clone()).with_journal(kept.journal());
    let mut keeping_up = bus.subscribe();
    let mut lagging = bus.subscribe();
    let count = WINDOW * 3;
    let reader = tokio::spawn(async move {
        let seen = read_all(&mut keeping_up).await;
        (seen, keeping_up.lagged())
    });
    for n in 0..count {
        events.send(notice(n));
        if n % 64 == 0 {
            // Lets the reader keep up, as a frontend on its own task does.
            tokio::task::yield_now().await;
        }
    }
    drop(events);
    let (fast, fast_lagged) = reader.await.unwrap();
    let slow = read_all(&mut lagging).await;
    let expected: Vec<Event> = (0..count).map(notice).collect();
    assert_eq!(fast, expected);
    assert_eq!(slow, expected);
    assert_eq!(fast_lagged, 0, "the reader that kept up read from memory");
    assert_eq!(
        lagging.lagged(),
        (count - WINDOW) as u64,
        "what left memory came from the journal"
    );
}

#[tokio::test]
async fn without_a_journal_nothing_leaves_memory() {
    let bus = Bus::new();
    let events = Events::new(bus.clone());
    let mut late = bus.subscribe();
    for n in 0..WINDOW * 2 {
        events.send(notice(n));
    }
    drop(events);
    assert_eq!(read_all(&mut late).await.len(), WINDOW * 2);
    assert_eq!(late.lagged(), 0);
}

#[tokio::test]
async fn once_the_journal_fails_what_follows_stays_in_memory() {
    let fail_at = WINDOW as u64 * 2;
    let kept = Kept {
        fail_at: Some(fail_at),
        ..Kept::default()
    };
    let bus = Bus::starting_at(0, Some(kept.replay()));
    let events = Events::new(bus.clone()).with_journal(kept.journal());
    let mut late = bus.subscribe();
    let count = WINDOW * 4;
    for n in 0..count {
        events.send(notice(n));
    }
    drop(events);
    let seen = read_all(&mut late).await;
    // The history's error comes just before the event it could not record; every event
    // is there, once, in order.
    let error_at = fail_at as usize;
    assert!(
        matches!(&seen[error_at], Event::Error { message, .. } if message.contains("the disk is full")),
        "{:?}",
        seen[error_at]
    );
    let mut without_error = seen.clone();
    without_error.remove(error_at);
    assert_eq!(without_error, (0..count).map(notice).collect::<Vec<_>>());
    // Everything recorded left memory (more than a window followed); nothing after it did.
    assert_eq!(late.lagged(), fail_at);
}

#[tokio::test]
async fn events_the_journal_cannot_give_back_are_named_as_missed() {
    let kept = Kept::default();
    let broken: Replay = Arc::new(|_, _| Err("the file was removed".into()));
    let bus = Bus::starting_at(0, Some(broken));
    let events = Events::new(bus.clone()).with_journal(kept.journal());
    let mut late = bus.subscribe();
    for n in 0..WINDOW * 2 {
        events.send(notice(n));
    }
    drop(events);
    let seen = read_all(&mut late).await;
    let Event::Error { message, .. } = &seen[0] else {
        panic!("{:?}", seen[0]);
    };
    assert!(message.contains("events could not be read back: the file was removed"));
    // It goes on with what it can still get, in order, ending with the newest.
    assert_eq!(seen.last(), Some(&notice(WINDOW * 2 - 1)));
    assert_eq!(late.lagged(), WINDOW as u64);
}

#[tokio::test]
async fn a_resumed_session_numbers_on_from_its_recorded_events() {
    let kept = Kept::default();
    let bus = Bus::starting_at(500, Some(kept.replay()));
    let events = Events::new(bus.clone()).with_journal(kept.journal());
    let mut subscriber = bus.subscribe();
    events.send(notice(0));
    drop(events);
    assert_eq!(read_all(&mut subscriber).await, vec![notice(0)]);
    assert_eq!(kept.events.lock().unwrap()[0].0, 500);
}
