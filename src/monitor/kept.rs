//! The monitor's working copy of the health view, and the instants at which time alone changes
//! it.
//!
//! A [`KeptView`] holds one [`EndpointView`] per endpoint of the configuration last reconciled,
//! indexed by its [`EndpointId`], and the deadline of each endpoint (an override's expiry, a
//! hold-down's end, a latency slice leaving its window: the earliest that is ahead). The monitor
//! sets an endpoint's slot whenever something about it changes (a probe result, an override, a
//! reload, a deadline reached) and publishes the slots as one immutable [`HealthView`] that the
//! publisher loads without a lock. Publishing copies every slot, so changes of latency alone
//! are published at most once per [`PUBLISH_GAP`] (many results, one copy: the tables take
//! latency in every few seconds anyway); a change subscribers must hear of (a serving state, an
//! endpoint's health, whether it is probed here) is published at once, as are overrides and reloads.
//!
//! No clock and no I/O: `now` is an argument.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::model::{EndpointId, Layout};
use crate::snapshot::steering::{EndpointView, HealthView};

/// Least time between two publications of changes of latency alone.
pub const PUBLISH_GAP: Duration = Duration::from_millis(10);

/// The working view and its deadlines.
#[derive(Debug)]
pub struct KeptView {
    layout: Layout,
    /// By endpoint id.
    slots: Vec<EndpointView>,
    /// By entry (the monitor's position of the endpoint): its current deadline.
    due: Vec<Option<Instant>>,
    /// Deadlines as (when, entry), earliest first. An entry whose deadline has since moved
    /// leaves a stale element here, skipped when it comes up.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// What changed since the last publication, if anything.
    pending: Option<Pending>,
    published_at: Option<Instant>,
}

/// What changed since the last publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    /// Subscribers must hear of it: a serving state changed, or an endpoint's health did.
    notify: bool,
}

impl KeptView {
    /// No endpoints yet.
    pub fn new() -> KeptView {
        KeptView {
            layout: Layout::default(),
            slots: Vec::new(),
            due: Vec::new(),
            heap: BinaryHeap::new(),
            pending: None,
            published_at: None,
        }
    }

    /// Start over for a configuration compiled as `layout` with `slots` endpoint ids and
    /// `entries` endpoints: every slot up with nothing measured, no deadlines. The caller sets
    /// every slot next.
    pub fn reset(&mut self, layout: Layout, slots: usize, entries: usize) {
        self.layout = layout;
        self.slots = vec![EndpointView::default(); slots];
        self.due = vec![None; entries];
        self.heap.clear();
        self.pending = Some(Pending { notify: true });
    }

    /// Set the slot of `id` (kept by `entry`) to `view`, and the entry's next deadline to `due`.
    pub fn set(&mut self, entry: usize, id: EndpointId, view: EndpointView, due: Option<Instant>) {
        if let Some(slot) = self.slots.get_mut(id.index())
            && *slot != view
        {
            // Whether this vantage votes changes answers as a serving state does.
            let serving = slot.serving != view.serving || slot.probed != view.probed;
            *slot = view;
            let p = self.pending.get_or_insert(Pending { notify: false });
            p.notify |= serving;
        }
        if let Some(d) = self.due.get_mut(entry)
            && *d != due
        {
            *d = due;
            if let Some(t) = due {
                self.heap.push(Reverse((t, entry)));
            }
        }
    }

    /// Note a change subscribers must hear of that no slot shows (an endpoint's health changed
    /// without changing what it serves, as Unknown to Up under `assume_up`): the next
    /// publication says so.
    pub fn note_transition(&mut self) {
        self.pending = Some(Pending { notify: true });
    }

    /// The entries whose deadline is at or before `now`, each once; their deadlines are cleared
    /// (setting their slots gives them new ones).
    pub fn take_due(&mut self, now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(&Reverse((t, entry))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            if self.due.get(entry) == Some(&Some(t)) {
                self.due[entry] = None;
                out.push(entry);
            }
        }
        out
    }

    /// When the monitor must next act with no report: the earliest deadline, or the end of the
    /// publication gap when a change waits to be published.
    pub fn next_wake(&self) -> Option<Instant> {
        let deadline = self.heap.peek().map(|Reverse((t, _))| *t);
        let publish = self.pending.and_then(|p| self.publish_at(p));
        deadline.into_iter().chain(publish).min()
    }

    /// The slots as a view, if a change waits and may be published at `now` (news for
    /// subscribers at once, latency alone once the gap since the last publication has passed);
    /// with it, whether subscribers must hear of it (see [`KeptView::publish`]).
    pub fn publish_due(&mut self, now: Instant) -> Option<(Arc<HealthView>, bool)> {
        let p = self.pending?;
        if self.publish_at(p).is_some_and(|t| now < t) {
            return None;
        }
        Some(self.publish(now))
    }

    /// The slots as a view now, gap or not; with it, whether subscribers must hear of what
    /// changed since the last publication (a serving state or a transition did).
    pub fn publish(&mut self, now: Instant) -> (Arc<HealthView>, bool) {
        let notify = self.pending.take().is_some_and(|p| p.notify);
        self.published_at = Some(now);
        let view = HealthView::new(self.layout, self.slots.len(), |id| self.slots[id.index()]);
        (Arc::new(view), notify)
    }

    /// The earliest `pending` may be published; `None`: at once (news for subscribers, or
    /// nothing published yet).
    fn publish_at(&self, pending: Pending) -> Option<Instant> {
        if pending.notify {
            return None;
        }
        self.published_at.map(|t| t + PUBLISH_GAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::state::Serving;

    const MS: Duration = Duration::from_millis(1);

    fn up(p50_ms: u64) -> EndpointView {
        EndpointView {
            serving: Serving::Up,
            p50: Some(MS * p50_ms as u32),
            p90: None,
            overridden: None,
            probed: true,
        }
    }

    fn down() -> EndpointView {
        EndpointView {
            serving: Serving::Down,
            ..Default::default()
        }
    }

    /// Two endpoints of layout 7, published once at `t0`.
    fn kept(t0: Instant) -> KeptView {
        let mut k = KeptView::new();
        k.reset(Layout(7), 2, 2);
        k.set(0, EndpointId(0), up(1), None);
        k.set(1, EndpointId(1), up(2), None);
        let (view, notify) = k.publish(t0);
        assert!(notify, "a reset is news");
        assert_eq!(view.layout(), Layout(7));
        assert_eq!(view.get(EndpointId(1)), up(2));
        k
    }

    #[test]
    fn latency_alone_is_published_at_most_once_per_gap_news_at_once() {
        let t0 = Instant::now();
        let mut k = kept(t0);
        assert_eq!((k.next_wake(), k.publish_due(t0 + MS * 50)), (None, None));
        // Latency alone: published after the gap, and not news for subscribers.
        k.set(0, EndpointId(0), up(3), None);
        assert_eq!(k.next_wake(), Some(t0 + PUBLISH_GAP));
        let (view, notify) = k.publish_due(t0 + MS * 50).expect("gap passed");
        assert_eq!((view.get(EndpointId(0)), notify), (up(3), false));
        // Latency again right after: held until the gap from that publication has passed...
        k.set(0, EndpointId(0), up(4), None);
        assert!(k.publish_due(t0 + MS * 55).is_none());
        assert_eq!(k.next_wake(), Some(t0 + MS * 50 + PUBLISH_GAP));
        // ... unless a serving state changes meanwhile: that goes out at once, with it.
        k.set(1, EndpointId(1), down(), None);
        assert_eq!(k.next_wake(), None);
        let (view, notify) = k.publish_due(t0 + MS * 55).expect("news");
        assert_eq!(
            (view.get(EndpointId(0)), view.get(EndpointId(1)), notify),
            (up(4), down(), true)
        );
        // Setting a slot to what it holds is no change.
        k.set(1, EndpointId(1), down(), None);
        assert_eq!(k.publish_due(t0 + MS * 100), None);
        // A transition no slot shows is still news.
        k.note_transition();
        assert_eq!(k.publish_due(t0 + MS * 100).map(|p| p.1), Some(true));
        // Probed here or not (probe sharding) is news: it decides whether this vantage votes.
        let given_away = EndpointView {
            probed: false,
            ..down()
        };
        k.set(1, EndpointId(1), given_away, None);
        assert_eq!(k.publish_due(t0 + MS * 101).map(|p| p.1), Some(true));
        // A slot outside the layout changes nothing.
        k.set(1, EndpointId(9), up(1), None);
        assert_eq!(k.publish_due(t0 + MS * 200), None);
    }

    #[test]
    fn deadlines_come_due_once_and_moved_ones_are_skipped() {
        let t0 = Instant::now();
        let mut k = kept(t0);
        let s = |n: u32| t0 + Duration::from_secs(n.into());
        k.set(0, EndpointId(0), up(1), Some(s(10)));
        k.set(1, EndpointId(1), up(2), Some(s(20)));
        assert_eq!(k.next_wake(), Some(s(10)));
        assert_eq!(k.take_due(s(9)), Vec::<usize>::new());
        assert_eq!(k.take_due(s(10)), [0]);
        assert_eq!(k.take_due(s(10)), Vec::<usize>::new(), "once");
        // Entry 1's deadline moves to 30: the element for 20 is stale.
        k.set(1, EndpointId(1), up(2), Some(s(30)));
        assert_eq!(k.take_due(s(25)), Vec::<usize>::new());
        // ... and to 5, then back to 30: one due at 30, not two.
        k.set(1, EndpointId(1), up(2), Some(s(5)));
        k.set(1, EndpointId(1), up(2), Some(s(30)));
        assert_eq!(k.take_due(s(40)), [1]);
        assert_eq!(k.next_wake(), None);
        // A reset forgets every deadline.
        k.set(0, EndpointId(0), up(1), Some(s(50)));
        k.reset(Layout(8), 1, 1);
        assert_eq!(k.take_due(s(60)), Vec::<usize>::new());
    }
}
