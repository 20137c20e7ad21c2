//! Settling a version and extensions from two greetings (sections 4.1 and
//! 4.2 of `docs/PROTOCOL.md`): what a listener answers to a dialer's
//! greeting, and what a dialer makes of the answer. Pure functions of the
//! greetings, tested here without sockets.

use bytes::Bytes;

use crate::error::versions;
use crate::wire::codec;
use crate::wire::frame::{Hello, Layout, MAGIC, ROLE_LISTENER};
use crate::wire::version::{Extensions, Negotiated, OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// What one side says of itself in its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offer {
    /// The oldest and newest protocol versions it speaks.
    pub oldest: u32,
    pub newest: u32,
    /// The largest frame payload it accepts.
    pub max_frame_length: usize,
    /// The most calls it runs at once for the connection (0: none).
    pub max_in_flight: usize,
    /// The extensions it lists.
    pub extensions: Extensions,
}

impl Offer {
    /// Every version this crate speaks, with these limits and extensions.
    pub(crate) fn new(
        max_frame_length: usize,
        max_in_flight: usize,
        extensions: Extensions,
    ) -> Self {
        Offer {
            oldest: OLDEST_PROTOCOL_VERSION,
            newest: PROTOCOL_VERSION,
            max_frame_length,
            max_in_flight,
            extensions,
        }
    }

    /// This offer, speaking no version newer than `newest`: a dialer
    /// greets a version-3 listener with version 3's own greeting.
    pub(crate) fn up_to(mut self, newest: u32) -> Self {
        self.newest = newest.max(self.oldest);
        self
    }

    /// The greeting of this offer with `role`, in the layout its newest
    /// version has.
    pub(crate) fn greeting(&self, role: u8) -> Bytes {
        self.greeting_in(role, self.newest, Layout::of(self.newest))
    }

    /// The greeting of this offer with `role`, naming `version` as its
    /// newest, in `layout`.
    fn greeting_in(&self, role: u8, version: u32, layout: Layout) -> Bytes {
        codec::encode_hello(
            &Hello {
                magic: MAGIC,
                role,
                newest: version,
                oldest: self.oldest.min(version),
                max_frame_length: u32::try_from(self.max_frame_length).unwrap_or(u32::MAX),
                max_in_flight: u32::try_from(self.max_in_flight).unwrap_or(u32::MAX),
                extensions: self.extensions,
            },
            layout,
        )
    }

    /// What both speak: the highest version in both ranges.
    fn shared(&self, theirs: &Hello) -> Option<u32> {
        let version = self.newest.min(theirs.newest);
        (version >= self.oldest.max(theirs.oldest)).then_some(version)
    }

    /// What a connection with `theirs` settled on at `version`.
    fn settled(&self, version: u32, theirs: &Hello) -> Negotiated {
        Negotiated::new(
            version,
            self.extensions.both(theirs.extensions),
            theirs.max_frame_length as usize,
            theirs.max_in_flight as usize,
        )
    }

    /// The versions it speaks, as text for a goodbye or an error.
    pub(crate) fn versions(&self) -> String {
        versions(self.oldest, self.newest)
    }
}

/// A listener's answer to a dialer's greeting.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The listener's greeting, in a layout the dialer reads.
    pub greeting: Bytes,
    /// What the connection settled on, or the goodbye message (code 7)
    /// that follows the greeting when the two share no version.
    pub outcome: Result<Negotiated, String>,
}

/// What a listener offering `ours` answers to a dialer's greeting `theirs`
/// laid out as `layout`: its own greeting in the dialer's layout (a dialer
/// of version 3 or older reads no other), stating the listener's range in
/// the ranged layout and, where only one version fits, the settled one or
/// the listener's newest.
pub(crate) fn answer(ours: &Offer, theirs: &Hello, layout: Layout) -> Answer {
    let shared = ours.shared(theirs);
    let greeting = match (layout, shared) {
        (Layout::Ranged, _) => ours.greeting_in(ROLE_LISTENER, ours.newest, Layout::Ranged),
        // Only version 3 can be shared with a greeting of one version.
        (Layout::V3 | Layout::Short, Some(version)) => {
            ours.greeting_in(ROLE_LISTENER, version, layout)
        }
        // Dialers of one version read this much of a greeting of any other
        // version, and then report the version.
        (Layout::V3 | Layout::Short, None) => {
            ours.greeting_in(ROLE_LISTENER, ours.newest, Layout::Short)
        }
    };
    let outcome = shared
        .map(|version| ours.settled(version, theirs))
        .ok_or_else(|| {
            format!(
                "unsupported protocol {}; this server speaks {}",
                versions(theirs.oldest, theirs.newest),
                ours.versions()
            )
        });
    Answer { greeting, outcome }
}

/// What a dialer makes of the listener's greeting.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// The connection speaks this.
    Agreed(Negotiated),
    /// A listener of version 3 answered a ranged greeting: it speaks only
    /// version 3 (which this side speaks too), reads only version 3's own
    /// greeting, and closes after its goodbye. Dial again, greeting with
    /// version 3.
    Again { newest: u32 },
    /// The two share no version; the listener speaks these.
    Mismatch { oldest: u32, newest: u32 },
}

/// What a dialer that offered `ours` makes of the listener's greeting
/// `theirs`, laid out as `layout`.
pub(crate) fn settle(ours: &Offer, theirs: &Hello, layout: Layout) -> Settled {
    let sent = Layout::of(ours.newest);
    if sent == Layout::Ranged && layout == Layout::V3 {
        return if ours.oldest <= theirs.newest {
            Settled::Again {
                newest: theirs.newest,
            }
        } else {
            Settled::Mismatch {
                oldest: theirs.oldest,
                newest: theirs.newest,
            }
        };
    }
    match ours.shared(theirs) {
        Some(version) => Settled::Agreed(ours.settled(version, theirs)),
        None => Settled::Mismatch {
            oldest: theirs.oldest,
            newest: theirs.newest,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{answer, settle, Offer, Settled};
    use crate::wire::codec::decode_hello;
    use crate::wire::frame::{Hello, Layout, ROLE_DIALER};
    use crate::wire::version::{Extension, Extensions};

    fn zstd() -> Extensions {
        Extensions::none().with(Extension::ZSTD)
    }

    fn offer(oldest: u32, newest: u32) -> Offer {
        Offer {
            oldest,
            newest,
            max_frame_length: 1000,
            max_in_flight: 8,
            extensions: zstd(),
        }
    }

    /// What a greeting of `offer` reads as, on the other side.
    fn sent(offer: &Offer) -> (Hello, Layout) {
        decode_hello(&offer.greeting(ROLE_DIALER)).unwrap()
    }

    /// A whole greeting exchange: the dialer's view and the listener's.
    fn exchange(dialer: &Offer, listener: &Offer) -> (Settled, Result<u32, String>) {
        let (hello, layout) = sent(dialer);
        let answered = answer(listener, &hello, layout);
        let (reply, reply_layout) = decode_hello(&answered.greeting).unwrap();
        (
            settle(dialer, &reply, reply_layout),
            answered.outcome.map(|n| n.version()),
        )
    }

    #[test]
    fn equal_ranges_settle_on_the_newest() {
        let (dialer, listener) = exchange(&offer(3, 4), &offer(3, 4));
        let Settled::Agreed(agreed) = dialer else {
            panic!("{dialer:?}")
        };
        assert_eq!(agreed.version(), 4);
        assert_eq!(agreed.extensions(), zstd());
        assert_eq!(agreed.peer_max_frame_length(), 1000);
        assert_eq!(listener, Ok(4));
    }

    #[test]
    fn a_newer_dialer_settles_on_the_listeners_newest() {
        let (dialer, listener) = exchange(&offer(3, 9), &offer(3, 4));
        assert!(matches!(dialer, Settled::Agreed(n) if n.version() == 4));
        assert_eq!(listener, Ok(4));
        let (dialer, listener) = exchange(&offer(4, 4), &offer(4, 9));
        assert!(matches!(dialer, Settled::Agreed(n) if n.version() == 4));
        assert_eq!(listener, Ok(4));
    }

    #[test]
    fn a_version_3_dialer_is_answered_in_its_own_layout() {
        let dialer = offer(3, 3);
        let (hello, layout) = sent(&dialer);
        assert_eq!(layout, Layout::V3);
        let answered = answer(&offer(3, 4), &hello, layout);
        let (reply, reply_layout) = decode_hello(&answered.greeting).unwrap();
        assert_eq!(reply_layout, Layout::V3);
        assert_eq!(reply.newest, 3);
        assert!(reply.extensions.contains(Extension::ZSTD));
        assert_eq!(answered.outcome.unwrap().version(), 3);
    }

    #[test]
    fn a_version_3_listener_makes_a_ranged_dialer_greet_again() {
        // What a listener of version 3 sends to any other version: its own
        // greeting (then goodbye 7).
        let old_listener = offer(3, 3).greeting(crate::wire::frame::ROLE_LISTENER);
        let (reply, layout) = decode_hello(&old_listener).unwrap();
        assert_eq!(
            settle(&offer(3, 4), &reply, layout),
            Settled::Again { newest: 3 }
        );
        // Greeting again with version 3's own greeting, it is agreed.
        let (dialer, listener) = exchange(&offer(3, 4).up_to(3), &offer(3, 3));
        assert!(matches!(dialer, Settled::Agreed(n) if n.version() == 3));
        assert_eq!(listener, Ok(3));
        // A dialer that no longer speaks version 3 gives up instead.
        assert_eq!(
            settle(&offer(4, 5), &reply, layout),
            Settled::Mismatch {
                oldest: 3,
                newest: 3
            }
        );
    }

    #[test]
    fn disjoint_ranges_say_which_versions_the_listener_speaks() {
        let (dialer, listener) = exchange(&offer(5, 6), &offer(3, 4));
        assert_eq!(
            dialer,
            Settled::Mismatch {
                oldest: 3,
                newest: 4
            }
        );
        assert_eq!(
            listener.unwrap_err(),
            "unsupported protocol versions 5 to 6; this server speaks versions 3 to 4"
        );
    }

    #[test]
    fn an_older_dialer_gets_a_greeting_it_can_read() {
        // Versions 1 and 2: magic, role, version, frame limit, window, and
        // nothing more, or their decoder fails on the trailing bytes.
        for version in [1, 2] {
            let hello = Hello {
                newest: version,
                oldest: version,
                ..sent(&offer(3, 3)).0
            };
            let answered = answer(&offer(3, 4), &hello, Layout::of(version));
            // What their decoder read: exactly five fields.
            let ((magic, role, newest, _, _), used) =
                crate::wire::codec::decode_prefix::<([u8; 4], u8, u32, u32, u32)>(
                    &answered.greeting,
                )
                .unwrap();
            assert_eq!(used, answered.greeting.len());
            assert_eq!((magic, role, newest), (*b"RRPC", 1, 4));
            assert!(answered.outcome.is_err());
        }
    }

    #[test]
    fn extensions_are_those_both_list() {
        let mut plain = offer(3, 4);
        plain.extensions = Extensions::none();
        let (dialer, _) = exchange(&plain, &offer(3, 4));
        assert!(matches!(dialer, Settled::Agreed(n) if n.extensions().is_empty()));
    }

    #[test]
    fn later_fields_of_a_ranged_greeting_are_ignored() {
        let mut greeting = offer(3, 7).greeting(ROLE_DIALER).to_vec();
        greeting.extend_from_slice(&[9, 9, 9]);
        let (hello, layout) = decode_hello(&greeting).unwrap();
        assert_eq!((hello.oldest, hello.newest, layout), (3, 7, Layout::Ranged));
        // Unknown extension numbers are ignored too.
        // RRPC, role 0, version 4, limit 10, window 8, oldest 3, and the
        // extensions 1, 200 and 99.
        let listed = [b'R', b'R', b'P', b'C', 0, 4, 10, 8, 3, 3, 1, 200, 99];
        let (hello, _) = decode_hello(&listed).unwrap();
        assert_eq!(hello.extensions, Extensions::none().with(Extension::ZSTD));
    }
}
