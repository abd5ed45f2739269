//! The bus with an overflow kept in a list: every subscriber gets every event once, in
//! order, whether it keeps up, falls behind the window, goes away, or the overflow fails;
//! and what everyone has read leaves memory.

use std::sync::{Arc, Mutex};

use super::*;
use crate::engine::Events;

/// An overflow that keeps events in a list, refusing them from `fail_at` on when set.
#[derive(Clone, Default)]
struct Kept {
    events: Arc<Mutex<Vec<(u64, Event)>>>,
    fail_at: Option<u64>,
}

impl Kept {
    fn overflow(&self) -> Overflow {
        let (kept, fail_at) = (self.events.clone(), self.fail_at);
        let read_from = self.events.clone();
        Overflow {
            spill: Arc::new(move |seq, event: &Event| {
                if fail_at.is_some_and(|at| seq >= at) {
                    return Err("the disk is full".into());
                }
                kept.lock().unwrap().push((seq, event.clone()));
                Ok(())
            }),
            read: Arc::new(move |from, to| {
                let kept = read_from.lock().unwrap();
                Ok(kept
                    .iter()
                    .filter(|(seq, _)| (from..to).contains(seq))
                    .map(|(_, event)| event.clone())
                    .collect())
            }),
        }
    }

    fn spilled(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

fn notice(n: usize) -> Event {
    Event::Notice {
        message: format!("event {n}"),
    }
}

fn held(bus: &Bus) -> usize {
    bus.shared.lock().window.len()
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
    let bus = Bus::starting_at(0, Some(kept.overflow()));
    let events = Events::new(bus.clone());
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
    assert_eq!(
        held(&bus),
        WINDOW,
        "memory holds a window of what one has not read"
    );
    let slow = read_all(&mut lagging).await;
    let expected: Vec<Event> = (0..count).map(notice).collect();
    assert_eq!(fast, expected);
    assert_eq!(slow, expected);
    assert_eq!(fast_lagged, 0, "the reader that kept up read from memory");
    let behind = (count - WINDOW) as u64;
    assert_eq!(
        lagging.lagged(),
        behind,
        "the rest came back from the overflow"
    );
    assert_eq!(kept.spilled() as u64, behind);
}

#[tokio::test]
async fn what_every_subscriber_has_read_leaves_memory_and_nothing_is_spilled() {
    let kept = Kept::default();
    let bus = Bus::starting_at(0, Some(kept.overflow()));
    let events = Events::new(bus.clone());
    let mut reading = bus.subscribe();
    let gone = bus.subscribe();
    drop(gone);
    for n in 0..WINDOW * 3 {
        events.send(notice(n));
        assert_eq!(reading.recv().await, Some(notice(n)));
    }
    assert_eq!(
        held(&bus),
        1,
        "only the newest, read since it was published"
    );
    assert_eq!(
        kept.spilled(),
        0,
        "a subscriber that went away holds nothing back"
    );
}

#[tokio::test]
async fn without_an_overflow_unread_events_stay_in_memory() {
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
async fn once_the_overflow_fails_what_is_unread_stays_in_memory() {
    let fail_at = WINDOW as u64;
    let kept = Kept {
        fail_at: Some(fail_at),
        ..Kept::default()
    };
    let bus = Bus::starting_at(0, Some(kept.overflow()));
    let events = Events::new(bus.clone());
    let mut late = bus.subscribe();
    let count = WINDOW * 4;
    for n in 0..count {
        events.send(notice(n));
    }
    drop(events);
    assert_eq!(
        read_all(&mut late).await,
        (0..count).map(notice).collect::<Vec<_>>()
    );
    assert_eq!(late.lagged(), fail_at);
}

#[tokio::test]
async fn events_the_overflow_cannot_give_back_are_named_as_missed() {
    let kept = Kept::default();
    let broken = Overflow {
        read: Arc::new(|_, _| Err("the file was removed".into())),
        ..kept.overflow()
    };
    let bus = Bus::starting_at(0, Some(broken));
    let events = Events::new(bus.clone());
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
async fn a_resumed_session_numbers_on_after_its_spilled_events() {
    let kept = Kept::default();
    let bus = Bus::starting_at(500, Some(kept.overflow()));
    let events = Events::new(bus.clone());
    let mut lagging = bus.subscribe();
    for n in 0..=WINDOW {
        events.send(notice(n));
    }
    drop(events);
    assert_eq!(read_all(&mut lagging).await.len(), WINDOW + 1);
    assert_eq!(kept.events.lock().unwrap()[0].0, 500);
}
