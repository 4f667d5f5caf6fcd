//! `EventFd`: a non-blocking eventfd an event loop watches (`loop.add_reader`) to be woken from
//! another thread, or from a signal handler: `notify` is a single `write(2)`, async-signal-safe.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a negative return is an error we check.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Make the descriptor readable. Async-signal-safe: one `write(2)`, no allocation or lock.
    pub fn notify(&self) {
        let one = 1u64;
        // SAFETY: writing 8 bytes from a live u64 to our own eventfd; the counter cannot overflow
        // in practice because the watcher resets it each time it wakes.
        unsafe {
            libc::write(self.fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// Consume the notifications so far: the descriptor is no longer readable until the next one.
    pub fn reset(&self) {
        let mut counter = 0u64;
        // SAFETY: reading 8 bytes into a u64 from our own non-blocking eventfd; EAGAIN is fine.
        unsafe {
            libc::read(self.fd(), (&mut counter as *mut u64).cast(), 8);
        }
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
