//! A sync session's bounded outbox, written by the session's own task.
//!
//! Frames for the client queue here and the session's `select!` loop
//! writes them whenever the socket accepts more, so a client that reads
//! slowly never holds up the loop (nor, through it, writers or other
//! clients): the loop keeps serving commits and timers while the frames
//! wait. A client that lets [`OUTBOX_MESSAGES`] messages or
//! [`OUTBOX_BYTES`] bytes pile up counts as stalled and is disconnected.
//!
//! Writing from the session's task, rather than from a writer task fed by
//! a channel, saves each connection a task and a channel block. Text
//! messages longer than [`FRAGMENT`] are queued as the frames of one
//! fragmented message (see `ws_socket.rs`), so the socket's write buffer
//! never grows past one fragment.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Poll, ready};

use bytes::Bytes;
use futures::Sink;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::ws_socket::FRAGMENT;

/// Messages queued for one client before it counts as stalled.
pub const OUTBOX_MESSAGES: usize = 4096;
/// Bytes queued for one client before it counts as stalled.
pub const OUTBOX_BYTES: usize = 8 << 20;

/// One queued frame.
#[derive(Debug)]
struct Queued {
    msg: Message,
    /// Payload bytes it counts for.
    size: usize,
    /// The last frame of its message.
    last: bool,
}

/// The outbox.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Queued>,
    bytes: usize,
    messages: usize,
    /// Frames were written since the last flush.
    unflushed: bool,
    /// A close frame was written: nothing more goes out.
    closed: bool,
}

impl Outbox {
    /// Queues `msg`; `false` when the client is not keeping up (the message
    /// is dropped and the session must end). Close frames always fit.
    pub fn push(&mut self, msg: Message) -> bool {
        let size = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 16,
        };
        let control = matches!(msg, Message::Close(_));
        if !control && (self.bytes + size > OUTBOX_BYTES || self.messages + 1 > OUTBOX_MESSAGES) {
            return false;
        }
        self.bytes += size;
        self.messages += 1;
        match msg {
            Message::Text(text) if text.len() > FRAGMENT => {
                let data = Bytes::from(text);
                let mut at = 0;
                while at < data.len() {
                    let end = (at + FRAGMENT).min(data.len());
                    let opcode = if at == 0 { Data::Text } else { Data::Continue };
                    let last = end == data.len();
                    let frame = Frame::message(data.slice(at..end), OpCode::Data(opcode), last);
                    self.queue.push_back(Queued {
                        msg: Message::Frame(frame),
                        size: end - at,
                        last,
                    });
                    at = end;
                }
            }
            msg => self.queue.push_back(Queued {
                msg,
                size,
                last: true,
            }),
        }
        true
    }

    /// Whether [`Outbox::write`] has something to do.
    pub fn has_work(&self) -> bool {
        !self.closed && (!self.queue.is_empty() || self.unflushed)
    }

    /// Writes queued frames until none is left and the socket is flushed;
    /// `Ok(true)` once a close frame went out. Cancel-safe: a frame leaves
    /// the queue only when the socket took it.
    pub async fn write<S>(&mut self, sink: &mut S) -> Result<bool, Error>
    where
        S: Sink<Message, Error = Error> + Unpin,
    {
        poll_fn(|cx| {
            while !self.closed && !self.queue.is_empty() {
                ready!(Pin::new(&mut *sink).poll_ready(cx))?;
                let Some(q) = self.queue.pop_front() else {
                    break;
                };
                self.bytes -= q.size;
                if q.last {
                    self.messages -= 1;
                }
                self.closed = matches!(q.msg, Message::Close(_));
                Pin::new(&mut *sink).start_send(q.msg)?;
                self.unflushed = true;
            }
            if self.unflushed {
                ready!(Pin::new(&mut *sink).poll_flush(cx))?;
                self.unflushed = false;
            }
            if self.queue.is_empty() {
                // An idle connection keeps no room: the first frames (a
                // large result is one queued frame per fragment) would
                // otherwise leave ~1 KB per connection for good.
                self.queue = VecDeque::new();
            }
            Poll::Ready(Ok(self.closed))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::Context;

    /// A sink that takes `room` frames, then reports not ready until more
    /// room is given.
    #[derive(Clone, Default)]
    struct Slow {
        taken: Arc<Mutex<Vec<Message>>>,
        room: Arc<Mutex<usize>>,
        flushes: Arc<Mutex<usize>>,
    }

    impl Sink<Message> for Slow {
        type Error = Error;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            if *self.room.lock().unwrap() > 0 {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }
        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
            *self.room.lock().unwrap() -= 1;
            self.taken.lock().unwrap().push(item);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            *self.flushes.lock().unwrap() += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frames_wait_in_order_while_the_socket_is_full_and_nothing_is_lost() {
        let mut sink = Slow::default();
        let mut out = Outbox::default();
        let long: String = "é".repeat(FRAGMENT);
        assert!(out.push(Message::Text("a".into())));
        assert!(out.push(Message::Text(long.clone().into())));
        assert!(out.push(Message::Text("b".into())));
        *sink.room.lock().unwrap() = 2;
        // The socket takes two frames, then blocks: cancelling the write
        // (as select! does) keeps the rest queued.
        let pending =
            tokio::time::timeout(std::time::Duration::from_millis(20), out.write(&mut sink)).await;
        assert!(pending.is_err(), "blocked on a full socket");
        assert_eq!(sink.taken.lock().unwrap().len(), 2);
        assert!(out.has_work());
        *sink.room.lock().unwrap() = 100;
        assert!(!out.write(&mut sink).await.unwrap());
        assert!(!out.has_work());
        let taken = sink.taken.lock().unwrap();
        assert!(matches!(&taken[0], Message::Text(t) if t.as_str() == "a"));
        let mut joined = Vec::new();
        for m in &taken[1..taken.len() - 1] {
            let Message::Frame(f) = m else {
                panic!("{m:?}")
            };
            assert!(f.payload().len() <= FRAGMENT);
            joined.extend_from_slice(f.payload());
        }
        assert_eq!(joined, long.as_bytes());
        assert!(matches!(taken.last(), Some(Message::Text(t)) if t.as_str() == "b"));
        assert_eq!((out.bytes, out.messages), (0, 0));
    }

    #[test]
    fn a_client_that_lets_messages_pile_up_is_stalled_but_a_close_always_fits() {
        let mut out = Outbox::default();
        for _ in 0..OUTBOX_MESSAGES {
            assert!(out.push(Message::Text("x".into())));
        }
        assert!(!out.push(Message::Text("x".into())));
        assert!(out.push(Message::Close(None)));
        let mut big = Outbox::default();
        assert!(big.push(Message::Text("y".repeat(OUTBOX_BYTES).into())));
        assert!(!big.push(Message::Text("y".into())));
    }

    #[tokio::test]
    async fn nothing_goes_out_after_a_close() {
        let mut sink = Slow::default();
        *sink.room.lock().unwrap() = 10;
        let mut out = Outbox::default();
        out.push(Message::Close(None));
        out.push(Message::Text("late".into()));
        assert!(out.write(&mut sink).await.unwrap());
        assert_eq!(sink.taken.lock().unwrap().len(), 1);
        assert!(!out.has_work());
    }
}
