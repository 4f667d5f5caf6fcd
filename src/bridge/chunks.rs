//! Chunks: the queue of body pieces between a stream and its app, holding the first one inline.
//! Most requests and responses have one body piece, and a `VecDeque` would allocate for it on one
//! thread and free it on the other.

use std::collections::VecDeque;

use bytes::Bytes;

/// A FIFO of byte chunks whose first chunk needs no allocation.
#[derive(Debug, Default)]
pub struct Chunks {
    first: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl Chunks {
    pub fn push_back(&mut self, chunk: Bytes) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(chunk);
        } else {
            self.rest.push_back(chunk);
        }
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_in_first_out_across_the_inline_slot() {
        let mut chunks = Chunks::default();
        assert!(chunks.is_empty());
        for piece in [&b"a"[..], b"b", b"c"] {
            chunks.push_back(Bytes::copy_from_slice(piece));
        }
        assert_eq!(chunks.pop_front().as_deref(), Some(&b"a"[..]));
        // The slot is free again while older chunks wait behind it: they must still come first.
        chunks.push_back(Bytes::from_static(b"d"));
        let order: Vec<_> = std::iter::from_fn(|| chunks.pop_front()).collect();
        assert_eq!(order, [&b"b"[..], b"c", b"d"]);
        assert!(chunks.is_empty());
        chunks.push_back(Bytes::from_static(b"e"));
        assert_eq!(chunks.pop_front().as_deref(), Some(&b"e"[..]));
        assert!(chunks.is_empty());
    }
}
